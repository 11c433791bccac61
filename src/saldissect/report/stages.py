"""The stages of workflow/rules/report.smk: tables and figures from Parquet
artifacts. One function per rule, named as the rule (`saldissect.core.stage`).
Nothing here runs a model or imports torch (a test checks it), so these rules
start fast and `snakemake tables` rebuilds every table and figure from
artifacts alone."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import yaml

from saldissect.core.io import read_parquet, write_atomic, write_table
from saldissect.core.stage import Files, Params
from saldissect.report import comparisons, failures, reporting
from saldissect.report.examples import plot_examples as examples_figure

log = logging.getLogger(__name__)


def _paths(value) -> list[str]:
    """A named input or output that holds one path or a list of them, as a list."""
    return [value] if isinstance(value, str) else list(value)


def effective_config(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The configuration of this run, every default filled in, as YAML."""
    text = yaml.safe_dump(dict(params["config"]), sort_keys=False)
    write_atomic(output["config"], lambda tmp: tmp.write_text(text))
    log.info("wrote %s", output["config"])


def make_tables(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The paper's tables (CSV + Markdown) and figures for one dataset, all models;
    the metrics with bootstrap intervals over validation images when ``image_scores``
    are given (the Markdown shows them as "value [low, high]")."""
    metrics, categories = _paths(input["metrics"]), _paths(input["categories"])
    contributions, out, dataset = _paths(input["contributions"]), output, wildcards["dataset"]
    table = reporting.metrics_table(
        metrics, _paths(input["image_scores"]), confidence=params["confidence"], seed=params["seed"]
    )
    write_atomic(out["metrics_csv"], lambda tmp: table.to_csv(tmp, index=False))
    markdown = reporting.with_brackets(table).to_markdown(index=False, floatfmt=".3f")
    markdown += "\n\n" + reporting.averaging_note(metrics) + "\n"
    write_atomic(out["metrics_md"], lambda tmp: tmp.write_text(markdown))
    write_table(reporting.top_semantics_table(contributions), out["top_csv"], out["top_md"])
    write_table(reporting.categories_table(categories), out["categories_csv"], out["categories_md"])
    reporting.plot_categories(
        categories, out["categories_png"], f"Category contributions ({dataset})"
    )
    for path, figure in zip(contributions, _paths(out["top_png"]), strict=True):
        model = Path(path).parent.name
        reporting.plot_top_semantics(path, figure, f"Top semantics: {model} on {dataset}")


def plot_examples(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The dissection examples figure of one model."""
    title = f"Dissection examples: {wildcards['model']} on {wildcards['dataset']}"
    examples_figure(
        read_parquet(input["examples"], "examples"),
        read_parquet(input["concepts"], "concepts"),
        output["png"],
        title,
    )


def plot_failures(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The failure analysis's table (CSV and Markdown), forest plot, and worst and
    best images (rule ``analyse_failures`` computes them)."""
    cfg = params["failures"]
    title = f"{wildcards['model']} on {wildcards['dataset']}"
    table = read_parquet(input["table"], "failures")
    write_table(table, output["csv"], output["md"])
    what = f"{cfg['variant']}, {cfg['metric'].upper()}, {cfg['fraction']:.0%} worst vs best"
    failures.plot_failures(table, output["png"], f"{title} ({what})", top=cfg["top"])
    failures.plot_worst_best(
        read_parquet(input["images"], "failure_images"),
        read_parquet(input["val"], "split")[["image_id", "image_path"]],
        output["examples_png"],
        f"{title}: worst and best images by {cfg['metric'].upper()}",
    )


def _best_epoch(history: str) -> int:
    """The epoch count of a training run's kept model (best validation CC)."""
    table = read_parquet(history, "history")
    val = table[table["split"] == "val"]
    return int(val.loc[val["cc"].idxmax(), "epoch"]) + 1


def track_progress(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Contributions of the phase-one snapshots and of the final model, by epoch.
    ``epochs`` gives each run's epoch count; None is the final model, placed at
    ``last_epoch`` (the end of phase one; snapshots come before it) although the
    model phase one keeps is that of its best validation epoch (named in the title)."""
    top, last_epoch = params["top"], params["last_epoch"]
    out = output
    tables = {
        (last_epoch if epoch is None else epoch): read_parquet(path, "contributions")
        for path, epoch in zip(_paths(input["runs"]), params["epochs"], strict=True)
    }
    table = comparisons.progressive_table(dict(sorted(tables.items())))
    write_table(table, out["csv"], out["md"])
    title = (
        f"Progressive fine-tuning: {wildcards['model']} on {wildcards['dataset']}\n"
        "last point: the final model (phase one keeps its best validation "
        f"epoch, {_best_epoch(input['history'])} of {last_epoch})"
    )
    comparisons.plot_progressive(table, out["png"], title, top=top)


def compare_seeds(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Kendall tau of the top concepts between seed replicates, per model."""
    top, dataset, out = params["top"], wildcards["dataset"], output
    by_model: dict[str, dict[str, pd.DataFrame]] = {}
    for path, label in zip(_paths(input["runs"]), params["labels"], strict=True):
        by_model.setdefault(label["model"], {})[f"seed {label['seed']}"] = read_parquet(
            path, "contributions"
        )
    frames = []
    figures = dict(zip(sorted(by_model), _paths(out["png"]), strict=True))
    for model, tables in sorted(by_model.items()):
        pairs = comparisons.rank_stability(tables, top=top).assign(model=model)
        frames.append(pairs)
        summary = comparisons.summarise_stability(pairs)
        log.info(
            "%s: Kendall tau of the top %d concepts over %d seed pairs: mean %.3f (%.3f to %.3f)",
            model,
            top,
            summary["n_pairs"],
            summary["mean_kendall_tau"],
            summary["min_kendall_tau"],
            summary["max_kendall_tau"],
        )
        comparisons.plot_replicates(
            tables, figures[model], f"Seed replicates: {model} on {dataset}", top=top
        )
    table = pd.concat(frames, ignore_index=True)
    table = table[["model", *comparisons.STABILITY_COLUMNS]]
    write_table(table, out["csv"], out["md"])


def compare_training_data(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Each model trained on every compared dataset: categories and top concepts side
    by side (one table for all models, one figure per model)."""
    labels, top, out = params["labels"], params["top"], output
    categories, contributions = _paths(input["categories"]), _paths(input["contributions"])
    models = sorted({label["model"] for label in labels})
    figures = dict(zip(models, _paths(out["png"]), strict=True))
    frames = []
    for model in models:
        chosen = [i for i, label in enumerate(labels) if label["model"] == model]
        cats = {labels[i]["dataset"]: read_parquet(categories[i], "categories") for i in chosen}
        contribs = {
            labels[i]["dataset"]: read_parquet(contributions[i], "contributions") for i in chosen
        }
        wide = comparisons.training_data_table(cats).rename(columns={"category": "semantic"})
        across = comparisons.concepts_across(contribs, top=top).rename(
            columns={"concept": "semantic"}
        )
        frames.append(wide.assign(model=model, kind="category"))
        frames.append(across.drop(columns="category").assign(model=model, kind="concept"))
        comparisons.plot_training_data(cats, figures[model], f"Impact of training data: {model}")
    table = pd.concat(frames, ignore_index=True)
    front = ["model", "kind", "semantic"]
    table = table[front + [c for c in table.columns if c not in front]]
    write_table(table, out["csv"], out["md"])


def plot_interactions(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The semantic interactions heatmap of the ``params["top"]`` most positive and
    most negative concepts."""
    reporting.plot_interactions(
        input["semantic"],
        input["contributions"],
        output["png"],
        f"Semantic interactions: {wildcards['model']} on {wildcards['dataset']}",
        top=params["top"],
    )
