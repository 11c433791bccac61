"""The stages of workflow/rules/analysis.smk: thresholds, dissection,
contributions, evaluation, the dissection examples and the failure analysis
(docs/method.md 3-5, 7-8). One function per rule, named as the rule
(`saldissect.core.stage`)."""

from __future__ import annotations

import logging

import numpy as np
import torch

from saldissect.analysis import contributions as contrib
from saldissect.analysis import failures
from saldissect.analysis.dissection import compute_thresholds as thresholds_of
from saldissect.analysis.dissection import dissect
from saldissect.analysis.evaluation import evaluate
from saldissect.analysis.examples import collect_examples as examples_of
from saldissect.analysis.readouts import concept_readouts
from saldissect.core.io import check_schema, read_parquet, write_parquet
from saldissect.core.stage import Files, Params
from saldissect.training.train import load_model, pick_device

log = logging.getLogger(__name__)


def read_thresholds(path: str) -> torch.Tensor:
    """The per-basis thresholds of a thresholds.parquet, as a float32 tensor."""
    values = read_parquet(path, "thresholds")["threshold"].to_numpy(np.float32).copy()
    return torch.as_tensor(values)


def read_basis_weights(path: str) -> torch.Tensor:
    """Phase two's per-basis weights of a basis_weights.parquet, by basis, as float32."""
    table = read_parquet(path, "basis_weights").sort_values("basis")
    return torch.as_tensor(table["weight"].to_numpy(np.float32).copy())


def compute_thresholds(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    model_cfg, cfg = params["model"], params["thresholds"]
    dev = pick_device(params["device"])
    model = load_model(input["model"], model_cfg, "factorised", dev)
    table = thresholds_of(
        model,
        read_parquet(input["val"], "split"),
        tuple(model_cfg["input_size"]),
        quantile=cfg["quantile"],
        bins=cfg["bins"],
        batch_size=cfg["batch_size"],
        device=dev,
    )
    log.info(
        "thresholds: median %.4f, active fraction %.3f",
        table["threshold"].median(),
        table["active_fraction"].mean(),
    )
    write_parquet(table, output["thresholds"], "thresholds")


def dissect_bases(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Alignment of every basis with every concept, and its bootstrap replicates
    (each basis's ``contributions["top_k"]`` concepts per replicate)."""
    model_cfg, cfg, contributions = params["model"], params["dissection"], params["bootstrap"]
    dev = pick_device(params["device"])
    model = load_model(input["model"], model_cfg, "factorised", dev)
    tau = read_thresholds(input["thresholds"])
    probe_table = read_parquet(input["probe"], "probe")
    concept_table = read_parquet(input["concepts"], "concepts")
    log.info(
        "dissecting %d bases against %d concepts on %d probe images",
        model.n_bases,
        concept_table[["concept", "kind"]].drop_duplicates().shape[0],
        len(probe_table),
    )
    table, replicates = dissect(
        model,
        probe_table,
        concept_table,
        tau,
        tuple(model_cfg["input_size"]),
        min_cover=cfg["min_cover"],
        batch_size=cfg["batch_size"],
        device=dev,
        bootstrap=contributions["bootstrap"],
        seed=params["seed"],
        score=contributions["score"],
        keep_top=contributions["top_k"],
    )
    best = table.loc[table.groupby("basis")["mean_iou"].idxmax()]
    log.info(
        "best-aligned concept per basis (count of bases): %s",
        ", ".join(f"{c} {n}" for c, n in best["concept"].value_counts().items()),
    )
    write_parquet(table, output["alignment"], "alignment")
    write_parquet(replicates, output["bootstrap"], "alignment_bootstrap")


def score_readouts(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The contrast and regression readouts of the phase-two logit, with intervals."""
    model_cfg, cfg = params["model"], params["contributions"]
    dev = pick_device(params["device"])
    model = load_model(input["model"], model_cfg, "factorised", dev)
    table = concept_readouts(
        model,
        read_parquet(input["probe"], "probe"),
        read_parquet(input["concepts"], "concepts"),
        read_basis_weights(input["basis_weights"]),
        tuple(model_cfg["input_size"]),
        min_cover=params["dissection"]["min_cover"],
        batch_size=params["dissection"]["batch_size"],
        device=dev,
        bootstrap=cfg["bootstrap"],
        seed=params["seed"],
        confidence=cfg["confidence"],
        ridge=cfg["ridge"],
    )
    for name in ("contrast", "regression"):
        top = table.reindex(table[name].abs().sort_values(ascending=False).index).head(5)
        log.info(
            "%s readout, largest: %s",
            name,
            ", ".join(f"{r.concept} {getattr(r, name):+.3g}" for r in top.itertuples()),
        )
    write_parquet(table, output["readouts"], "readouts")


def score_contributions(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Contributions and category scores, with bootstrap intervals."""
    vocabulary, cfg = params["vocabulary"], params["contributions"]
    categories = contrib.load_categories(vocabulary["categories"])
    weights = read_parquet(input["basis_weights"], "basis_weights")
    aligned = read_parquet(input["alignment"], "alignment")
    table, cats = contrib.contributions(
        aligned,
        weights,
        categories,
        top_k=cfg["top_k"],
        top_n=cfg["top_n"],
        score=cfg["score"],
    )
    replicates = read_parquet(input["bootstrap"], "alignment_bootstrap")
    table, cats = contrib.with_intervals(
        table,
        cats,
        replicates,
        weights,
        top_k=cfg["top_k"],
        top_n=cfg["top_n"],
        confidence=cfg["confidence"],
        n_replicates=cfg["bootstrap"],
    )
    table = contrib.with_readouts(table, read_parquet(input["readouts"], "readouts"))
    n_replicates = replicates["replicate"].nunique()
    log.info(
        "%d bootstrap replicates; median %.0f%% interval width of ranked contributions: %.3g",
        n_replicates,
        100 * cfg["confidence"],
        (table["contribution_high"] - table["contribution_low"])[table["rank"] != 0].median()
        if n_replicates
        else float("nan"),
    )
    other = sorted(set(table.loc[table["category"] == "other", "concept"]) - set(categories))
    if other:
        log.warning(
            "%d concepts have no category and count as 'other': %s",
            len(other),
            ", ".join(other[:50]) + (" ..." if len(other) > 50 else ""),
        )
    ranked = table[table["rank"] != 0]
    log.info("top positive: %s", ", ".join(ranked[ranked["rank"] > 0]["concept"].head(10)))
    log.info("top negative: %s", ", ".join(ranked[ranked["rank"] < 0]["concept"].tail(10)[::-1]))
    write_parquet(table, output["contributions"], "contributions")
    write_parquet(cats, output["categories"], "categories")


def evaluate_models(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Every variant in ``params["variants"]`` on the validation split (docs/method.md 7)."""
    model_cfg, cfg = params["model"], params["evaluation"]
    checkpoints = {variant: input[variant] for variant in params["variants"]}
    dev = pick_device(params["device"])
    images = read_parquet(input["val"], "split")
    heads = {"baseline": "plain", "phase1": "factorised", "phase2": "reformulated"}
    models = {
        variant: load_model(checkpoint, model_cfg, heads[variant], dev)
        for variant, checkpoint in checkpoints.items()
    }
    sigma = cfg["center_bias_sigma"] if cfg["center_bias"] else None
    table, per_image = evaluate(
        models,
        images,
        tuple(model_cfg["input_size"]),
        batch_size=cfg["batch_size"],
        device=dev,
        center_bias_sigma=sigma,
        sauc_others=cfg["sauc_others"],
        sauc_pool=cfg["sauc_pool"],
        seed=params["seed"],
        num_workers=max(0, threads - 1),
        average=cfg["average"],
        information_gain=cfg["information_gain"],
        ig_bandwidth=cfg["ig_bandwidth"],
    )
    log.info("\n%s", table.pivot(index="metric", columns="variant", values="value").round(4))
    write_parquet(table, output["metrics"], "metrics")
    write_parquet(per_image, output["image_scores"], "image_scores")


def collect_examples(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The probe images and probability maps shown for the top concepts."""
    model_cfg, cfg, dissection = params["model"], params["examples"], params["dissection"]
    dev = pick_device(params["device"])
    model = load_model(input["model"], model_cfg, "factorised", dev)
    table = examples_of(
        model,
        read_parquet(input["probe"], "probe"),
        read_parquet(input["concepts"], "concepts"),
        read_thresholds(input["thresholds"]),
        read_parquet(input["contributions"], "contributions"),
        read_parquet(input["alignment"], "alignment"),
        tuple(model_cfg["input_size"]),
        n_concepts=cfg["concepts"],
        n_images=cfg["images"],
        max_scan=cfg["max_scan"],
        min_cover=dissection["min_cover"],
        batch_size=dissection["batch_size"],
        device=dev,
        score=params["score"],
    )
    log.info("%d example images for %d concepts", len(table), table["concept"].nunique())
    write_parquet(table, output["examples"], "examples")


def analyse_failures(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Worst vs best validation images and the concepts over-represented in the
    worst (docs/method.md 8); rule ``plot_failures`` draws them."""
    cfg, vocabulary = params["failures"], params["vocabulary"]
    scores = read_parquet(input["image_scores"], "image_scores")
    scores = scores[(scores["variant"] == cfg["variant"]) & (scores["metric"] == cfg["metric"])]
    groups = failures.split_worst_best(
        scores[["image_id", "value"]],
        fraction=cfg["fraction"],
        higher_is_better=cfg["metric"] != "kld",
    )
    concepts = read_parquet(input["val_concepts"], "concepts")
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
    write_parquet(check_schema(groups, "failure_images"), output["images"], "failure_images")
    write_parquet(table, output["table"], "failures")
    over = table[(table["odds_ratio"] > 1) & (table["p_value"] < 0.05)]
    log.info(
        "over-represented in the worst images (p < 0.05): %s",
        ", ".join(over["concept"]) or "none",
    )
