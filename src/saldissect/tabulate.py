"""One function per table and figure rule: read Parquet artifacts, write tables
and figures. Nothing here runs a model or imports torch, so these rules start
fast and `snakemake tables` rebuilds every table and figure from artifacts alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from saldissect.analysis import contributions as contrib
from saldissect.core.io import (
    SCHEMAS,
    check_schema,
    read_parquet,
    write_atomic,
    write_parquet,
    write_table,
)
from saldissect.report import reporting

log = logging.getLogger(__name__)


def run_tables(
    metrics: list[str],
    contributions: list[str],
    categories: list[str],
    out: dict[str, str],
    *,
    dataset: str,
    image_scores: list[str] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> None:
    """The paper's tables (CSV + Markdown) and figures for one dataset, all models;
    the metrics with bootstrap intervals over validation images when ``image_scores``
    are given (the Markdown shows them as "value [low, high]")."""
    table = reporting.metrics_table(metrics, image_scores, confidence=confidence, seed=seed)
    write_atomic(out["metrics_csv"], lambda tmp: table.to_csv(tmp, index=False))
    markdown = reporting.with_brackets(table).to_markdown(index=False, floatfmt=".3f") + "\n"
    write_atomic(out["metrics_md"], lambda tmp: tmp.write_text(markdown))
    write_table(reporting.top_semantics_table(contributions), out["top_csv"], out["top_md"])
    write_table(reporting.categories_table(categories), out["categories_csv"], out["categories_md"])
    reporting.plot_categories(
        categories, out["categories_png"], f"Category contributions ({dataset})"
    )
    figures = out["top_png"] if isinstance(out["top_png"], list) else [out["top_png"]]
    for path, figure in zip(contributions, figures, strict=True):
        model = Path(path).parent.name
        reporting.plot_top_semantics(path, figure, f"Top semantics: {model} on {dataset}")


def run_validation(
    runs: list[str],
    labels: list[dict],
    planted: str,
    out: dict[str, str],
    *,
    min_abs_weight: float,
    interaction: dict | None = None,
) -> pd.DataFrame:
    """Recovery of the planted weights for every synthetic run, controls and seed
    replicates included; where a label (dataset, model, control) names its run's
    ``semantic`` interactions, also the rank of the planted pair in its source's row."""
    truth = read_parquet(planted, "planted")
    rows = []
    for path, label in zip(runs, labels, strict=True):
        contributions = read_parquet(path, "contributions")
        for readout, column in contrib.READOUTS.items():
            result = contrib.recovery(
                contributions, truth, min_abs_weight=min_abs_weight, column=column
            )
            result.update(_planted_pair_rank(label.get("semantic"), interaction))
            rows.append(
                {
                    "dataset": label["dataset"],
                    "model": label["model"],
                    "control": "shuffled maps" if label["control"] else "none",
                    "readout": readout,
                    **result,
                }
            )
            log.info(
                "%s/%s, %s: Spearman %.3f, sign agreement %.3f",
                label["dataset"],
                label["model"],
                readout,
                result["spearman"],
                result["sign_agreement"],
            )
    table = pd.DataFrame(rows, columns=list(SCHEMAS["validation"]))
    table = check_schema(contrib.pool_controls(table), "validation")
    write_table(table, out["csv"], out["md"])
    named = {
        f"{label['dataset']}/{label['model']}": path
        for path, label in zip(runs, labels, strict=True)
    }
    reporting.plot_recovery(named, planted, out["png"], min_abs_weight)
    return table


def _planted_pair_rank(semantic: str | None, interaction: dict | None) -> dict:
    """The planted pair's rank in its row of a semantic interaction table."""
    if not semantic or not interaction or not interaction.get("source"):
        return {"interaction": "none", "interaction_rank": float("nan"), "interaction_row": 0}
    rank, size = contrib.pair_rank(
        read_parquet(semantic, "semantic_interactions"),
        interaction["source"],
        interaction["target"],
    )
    pair = f"{interaction['source']} -> {interaction['target']}"
    log.info("%s: planted pair %s ranks %s of %d in its row", semantic, pair, rank, size)
    return {"interaction": pair, "interaction_rank": rank, "interaction_row": size}


def run_interaction_figure(
    semantic: str, contributions: str, out: str, *, top: int, title: str
) -> None:
    reporting.plot_interactions(semantic, contributions, out, title, top=top)


def run_examples_figure(examples: str, concepts: str, out: str, title: str) -> None:
    from saldissect.report.examples import plot_examples

    plot_examples(
        read_parquet(examples, "examples"), read_parquet(concepts, "concepts"), out, title
    )


def run_failures(
    image_scores: str,
    val: str,
    val_concepts: str,
    vocabulary: dict,
    cfg: dict,
    out: dict[str, str],
    *,
    title: str,
) -> None:
    """Worst vs best validation images and the concepts over-represented in the worst."""
    from saldissect.report import failures

    scores = read_parquet(image_scores, "image_scores")
    scores = scores[(scores["variant"] == cfg["variant"]) & (scores["metric"] == cfg["metric"])]
    groups = failures.split_worst_best(
        scores[["image_id", "value"]],
        fraction=cfg["fraction"],
        higher_is_better=cfg["metric"] != "kld",
    )
    concepts = read_parquet(val_concepts, "concepts")
    annotated = groups["image_id"].isin(set(concepts["image_id"]))
    if not annotated.all():
        log.warning(
            "%d of the %d worst and best images have no scene graph; they count as holding "
            "no concept",
            int((~annotated).sum()),
            len(groups),
        )
    table = failures.odds_ratios(
        groups,
        concepts,
        contrib.load_categories(vocabulary["categories"]),
        min_images=cfg["min_images"],
    )
    write_parquet(check_schema(groups, "failure_images"), out["images"], "failure_images")
    write_parquet(table, out["table"], "failures")
    write_table(table, out["csv"], out["md"])
    what = f"{cfg['variant']}, {cfg['metric'].upper()}, {cfg['fraction']:.0%} worst vs best"
    failures.plot_failures(table, out["png"], f"{title} ({what})", top=cfg["top"])
    failures.plot_worst_best(
        groups,
        read_parquet(val, "split")[["image_id", "image_path"]],
        out["examples_png"],
        f"{title}: worst and best images by {cfg['metric'].upper()}",
    )
    over = table[(table["odds_ratio"] > 1) & (table["p_value"] < 0.05)]
    log.info(
        "over-represented in the worst images (p < 0.05): %s",
        ", ".join(over["concept"]) or "none",
    )


def _best_epoch(history: str) -> int:
    """The epoch count of a training run's kept model (best validation CC)."""
    table = read_parquet(history, "history")
    val = table[table["split"] == "val"]
    return int(val.loc[val["cc"].idxmax(), "epoch"]) + 1


def run_progressive(
    runs: list[str],
    epochs: list[int | None],
    history: str,
    out: dict[str, str],
    *,
    title: str,
    top: int,
    last_epoch: int,
) -> None:
    """Contributions of the phase-one snapshots and of the final model, by epoch.
    ``epochs`` gives each run's epoch count; None is the final model, placed at
    ``last_epoch`` (the end of phase one; snapshots come before it) although the
    model phase one keeps is that of its best validation epoch (named in the title)."""
    from saldissect.report import comparisons

    tables = {
        (last_epoch if epoch is None else epoch): read_parquet(path, "contributions")
        for path, epoch in zip(runs, epochs, strict=True)
    }
    table = comparisons.progressive_table(dict(sorted(tables.items())))
    write_table(table, out["csv"], out["md"])
    title = (
        f"{title}\nlast point: the final model (phase one keeps its best validation "
        f"epoch, {_best_epoch(history)} of {last_epoch})"
    )
    comparisons.plot_progressive(table, out["png"], title, top=top)


def run_seed_stability(
    runs: list[str],
    labels: list[dict],
    out: dict[str, str],
    *,
    dataset: str,
    top: int,
) -> None:
    """Kendall tau of the top concepts between seed replicates, per model."""
    from saldissect.report import comparisons

    by_model: dict[str, dict[str, pd.DataFrame]] = {}
    for path, label in zip(runs, labels, strict=True):
        by_model.setdefault(label["model"], {})[f"seed {label['seed']}"] = read_parquet(
            path, "contributions"
        )
    frames = []
    figures = dict(zip(sorted(by_model), out["png"], strict=True))
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


def run_training_data(
    categories: list[str],
    contributions: list[str],
    labels: list[dict],
    out: dict[str, str],
    *,
    top: int,
) -> None:
    """Each model trained on every compared dataset: categories and top concepts side
    by side (one table for all models, one figure per model)."""
    from saldissect.report import comparisons

    models = sorted({label["model"] for label in labels})
    figures = dict(zip(models, out["png"], strict=True))
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
