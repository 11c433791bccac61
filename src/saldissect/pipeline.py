"""One function per workflow stage: read artifacts, call the library, write artifacts.

The Snakemake scripts in ``workflow/scripts`` are thin adapters over these;
notebooks and tests can call them directly with plain paths and config dicts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saldissect.analysis import contributions as contrib
from saldissect.analysis.dissection import compute_thresholds, dissect
from saldissect.analysis.evaluation import evaluate
from saldissect.core.io import (
    SCHEMAS,
    CheckpointError,
    check_schema,
    read_parquet,
    write_parquet,
)
from saldissect.data import synthetic
from saldissect.data.inputs import (
    InputError,
    index_salicon_split,
    index_val_concepts,
    index_visual_genome,
)
from saldissect.interaction import interactions as inter
from saldissect.training.train import (
    load_model,
    pick_device,
    train_phase2,
    train_saliency,
    write_prob_cache,
)

log = logging.getLogger(__name__)


def _thresholds(path: str) -> torch.Tensor:
    """The per-basis thresholds of a thresholds.parquet, as a float32 tensor."""
    values = read_parquet(path, "thresholds")["threshold"].to_numpy(np.float32).copy()
    return torch.as_tensor(values)


# ------------------------------------------------------------------------ data
def generate_world(cfg: dict, root: str | Path) -> None:
    log.info("drawing the synthetic world under %s", root)
    synthetic.write_world(root, cfg)


def prepare_data(
    dataset_cfg: dict,
    vocabulary: dict,
    paths: dict[str, str | None],
    out: dict[str, str],
    *,
    seed: int = 0,
    batch_size: int = 1,
    on_bad_sample: str = "error",
    threads: int = 1,
) -> None:
    """Index and check the splits and the probe set before any training.

    Every problem is collected, not just the first. With ``on_bad_sample:
    error`` any problem stops the run, listing them all (file and reason, one
    per line) and writing nothing; with ``skip`` bad samples are left out and
    listed in ``rejects.parquet``. Dataset-level problems always stop the run.
    The scene graphs are streamed; images are checked on ``threads`` threads.
    """
    train, bad_train, fatal = index_salicon_split(paths["salicon"], "train", threads=threads)
    val, bad_val, fatal_val = index_salicon_split(paths["salicon"], "val", threads=threads)
    probe, concepts, bad_probe, fatal_probe = index_visual_genome(
        paths["probe"],
        scene_graphs=paths.get("scene_graphs", "visual_genome"),
        images=paths.get("probe_images"),
        min_object_count=vocabulary["min_object_count"],
        min_attribute_count=vocabulary["min_attribute_count"],
        keep_coco=vocabulary["keep_coco"],
        threads=threads,
    )
    fatal += fatal_val + fatal_probe
    skipped = bad_train + bad_val + bad_probe
    if on_bad_sample == "error":
        fatal += skipped
    indexed = not fatal
    for name, split in (("train", train), ("val", val)):
        if indexed and len(split) < batch_size:
            fatal.append(
                (
                    f"{paths['salicon']}/images/{name}",
                    f"{len(split)} usable images, fewer than a batch of {batch_size}",
                )
            )
    if not fatal and probe.empty:
        fatal.append((paths["probe"], "no probe image with a kept concept"))
    if fatal:
        raise InputError(
            fatal,
            "the inputs (set on_bad_sample: skip to leave bad samples out)"
            if skipped and on_bad_sample == "error"
            else "the inputs",
        )
    if skipped:
        log.warning("skipped %d bad samples (listed in %s):", len(skipped), out["rejects"])
        for file, reason in skipped:
            log.warning("  %s: %s", file, reason)
    if dataset_cfg.get("shuffle_maps"):
        rng = np.random.default_rng(dataset_cfg.get("shuffle_seed", seed))
        for split in (train, val):
            order = rng.permutation(len(split))
            columns = ["map_path", "fixation_path"]
            split[columns] = split[columns].to_numpy()[order]
        log.info("control: maps and fixations shuffled across images")
    log.info(
        "%d train, %d val, %d probe images; %d concepts",
        len(train),
        len(val),
        len(probe),
        concepts[["concept", "kind"]].drop_duplicates().shape[0],
    )
    val_concepts = pd.DataFrame(columns=list(SCHEMAS["concepts"]))
    if paths.get("val_scene_graphs"):
        val_concepts, problems = index_val_concepts(paths["val_scene_graphs"], val)
        for file, reason in problems:
            log.warning("validation scene graphs: %s: %s", file, reason)
        # the dissection's vocabulary (counted on the probe set), not a recount here
        kept = concepts[["concept", "kind"]].drop_duplicates()
        val_concepts = check_schema(val_concepts.merge(kept, on=["concept", "kind"]), "concepts")
    log.info(
        "%d of %d validation images have a scene graph (failure analysis)",
        val_concepts["image_id"].nunique(),
        len(val),
    )
    rejects = pd.DataFrame(skipped, columns=["file", "reason"])
    write_parquet(rejects, out["rejects"], "rejects")
    write_parquet(val_concepts, out["val_concepts"], "concepts")
    write_parquet(train, out["train"], "split")
    write_parquet(val, out["val"], "split")
    write_parquet(probe, out["probe"], "probe")
    write_parquet(concepts, out["concepts"], "concepts")


# -------------------------------------------------------------------- training
def run_phase1(
    train: str,
    val: str,
    model_cfg: dict,
    cfg: dict,
    out_dir: str,
    *,
    seed: int,
    threads: int,
    device: str,
    head: str = "factorised",
    snapshots: list[int] = (),
) -> None:
    """Phase one (``factorised``), or the baseline with ``head="plain"``; ``snapshots``
    keeps the model after those epochs too (``epoch<e>.pt``)."""
    train_saliency(
        read_parquet(train, "split"),
        read_parquet(val, "split"),
        model_cfg,
        {**cfg, "seed": seed},
        out_dir,
        head=head,
        threads=threads,
        device=device,
        snapshots=snapshots,
    )


def run_phase2(
    train: str,
    val: str,
    model_cfg: dict,
    cfg: dict,
    phase1: str,
    out_dir: str,
    basis_weights: str,
    *,
    seed: int,
    threads: int,
    device: str,
    cache: dict[str, str] | None = None,
) -> None:
    _, weights = train_phase2(
        read_parquet(train, "split"),
        read_parquet(val, "split"),
        model_cfg,
        {**cfg, "seed": seed},
        phase1,
        out_dir,
        threads=threads,
        device=device,
        cache=cache,
    )
    log.info(
        "basis weights: %d positive, %d negative, mean %.4f",
        (weights["weight"] > 0).sum(),
        (weights["weight"] < 0).sum(),
        weights["weight"].mean(),
    )
    write_parquet(weights, basis_weights, "basis_weights")


# -------------------------------------------------------------------- analysis
def run_thresholds(
    checkpoint: str, val: str, model_cfg: dict, cfg: dict, out: str, *, device: str
) -> None:
    dev = pick_device(device)
    model = load_model(checkpoint, model_cfg, "factorised", dev)
    table = compute_thresholds(
        model,
        read_parquet(val, "split"),
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
    write_parquet(table, out, "thresholds")


def run_dissection(
    checkpoint: str,
    thresholds: str,
    probe: str,
    concepts: str,
    model_cfg: dict,
    cfg: dict,
    out: str,
    out_bootstrap: str,
    *,
    contributions: dict,
    seed: int,
    device: str,
) -> None:
    """Alignment of every basis with every concept, and its bootstrap replicates
    (each basis's ``contributions["top_k"]`` concepts per replicate)."""
    dev = pick_device(device)
    model = load_model(checkpoint, model_cfg, "factorised", dev)
    tau = _thresholds(thresholds)
    probe_table, concept_table = read_parquet(probe, "probe"), read_parquet(concepts, "concepts")
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
        seed=seed,
        score=contributions["score"],
        keep_top=contributions["top_k"],
    )
    best = table.loc[table.groupby("basis")["mean_iou"].idxmax()]
    log.info(
        "best-aligned concept per basis (count of bases): %s",
        ", ".join(f"{c} {n}" for c, n in best["concept"].value_counts().items()),
    )
    write_parquet(table, out, "alignment")
    write_parquet(replicates, out_bootstrap, "alignment_bootstrap")


def run_contributions(
    alignment: str,
    bootstrap: str,
    basis_weights: str,
    vocabulary: dict,
    cfg: dict,
    out_contributions: str,
    out_categories: str,
) -> None:
    """Contributions and category scores, with bootstrap intervals."""
    categories = contrib.load_categories(vocabulary["categories"])
    weights = read_parquet(basis_weights, "basis_weights")
    aligned = read_parquet(alignment, "alignment")
    table, cats = contrib.contributions(
        aligned,
        weights,
        categories,
        top_k=cfg["top_k"],
        top_n=cfg["top_n"],
        score=cfg["score"],
    )
    replicates = read_parquet(bootstrap, "alignment_bootstrap")
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
    contrast = contrib.contrast_readout(aligned, weights)
    table["contrast"] = contrast.reindex(table["concept"]).fillna(0.0).to_numpy()
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
    write_parquet(table, out_contributions, "contributions")
    write_parquet(cats, out_categories, "categories")


def run_evaluation(
    checkpoints: dict[str, str],
    val: str,
    model_cfg: dict,
    cfg: dict,
    out: str,
    out_images: str,
    *,
    seed: int,
    device: str,
    threads: int = 1,
) -> None:
    dev = pick_device(device)
    images = read_parquet(val, "split")
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
        seed=seed,
        num_workers=max(0, threads - 1),
    )
    log.info("\n%s", table.pivot(index="metric", columns="variant", values="value").round(4))
    write_parquet(table, out, "metrics")
    write_parquet(per_image, out_images, "image_scores")


# ---------------------------------------------------------------- interactions
def run_interaction_training(
    train: str,
    val: str,
    model_cfg: dict,
    cfg: dict,
    phase1: str,
    out_dir: str,
    *,
    dim: int,
    seed: int,
    threads: int,
    device: str,
    cache: dict[str, str] | None = None,
) -> None:
    inter.train_interaction(
        read_parquet(train, "split"),
        read_parquet(val, "split"),
        model_cfg,
        {**cfg, "seed": seed},
        phase1,
        out_dir,
        dim=dim,
        threads=threads,
        device=device,
        cache=cache,
    )


def import_checkpoint(
    source: str,
    phase: str,
    model_cfg: dict,
    out_model: str,
    out_history: str,
    out_basis_weights: str | None = None,
) -> None:
    """A reference checkpoint (`saldissect.models.reference`) as the ``model.pt`` of ``phase``.

    The file must fit the run's ``models:`` entry exactly: a size the file's
    tensors give otherwise (N, DINet's E, ...) stops the job naming the key, as
    every later stage builds the model from that entry. The history is empty
    (nothing was trained here); a phase-two file also gives the basis weights.
    """
    from saldissect.models import reference

    imported = reference.load_reference(source, model_cfg["arch"], phase, model_cfg)
    differ = {
        key: (model_cfg.get(key), value)
        for key, value in imported.config.items()
        if key in model_cfg and model_cfg[key] != value
    }
    if differ:
        raise CheckpointError(
            f"reference checkpoint {source} does not fit its models: entry: "
            + "; ".join(
                f"{k} is {ours!r} there, {theirs!r} in the file"
                for k, (ours, theirs) in differ.items()
            )
            + " (set them as the file has them)"
        )
    if imported.kept:
        log.info(
            "left at their initial values (the file has no place for them): %s",
            ", ".join(imported.kept),
        )
    reference.save_imported(imported, out_model)
    write_parquet(pd.DataFrame(columns=SCHEMAS["history"]), out_history, "history")
    if out_basis_weights:
        weights = reference.basis_weights_frame(imported.model)
        write_parquet(weights, out_basis_weights, "basis_weights")
    log.info("imported %s %s from %s", imported.arch, phase, source)


def prob_cache_inputs(inputs) -> dict[str, str] | None:
    """The cache files among a rule's named inputs (``train_cache``, ``val_cache``), if any."""
    names = dict(inputs.items()) if hasattr(inputs, "items") else dict(inputs)
    if "train_cache" not in names:
        return None
    return {"train": str(names["train_cache"]), "val": str(names["val_cache"])}


def run_prob_cache(
    phase1: str,
    splits: dict[str, str],
    model_cfg: dict,
    out: dict[str, str],
    *,
    batch_size: int,
    threads: int,
    device: str,
) -> None:
    """The float16 P of the frozen phase one for every image of each split (one file each)."""
    dev = pick_device(device)
    model = load_model(phase1, model_cfg, "factorised", dev)
    for split, path in splits.items():
        shape = write_prob_cache(
            model,
            read_parquet(path, "split"),
            tuple(model_cfg["input_size"]),
            out[split],
            batch_size=batch_size,
            threads=threads,
            device=dev,
        )
        log.info("%s: P of %d images, %d x %d x %d, float16", out[split], *shape)


def run_interaction_analysis(
    phase1: str,
    interaction: str,
    thresholds: str,
    alignment: str,
    val: str,
    model_cfg: dict,
    cfg: dict,
    contributions_cfg: dict,
    evaluation_cfg: dict,
    out: dict[str, str],
    *,
    device: str,
) -> None:
    """Spatial alignment, basis and semantic interactions of the interaction variant."""
    dev = pick_device(device)
    frozen = inter.load_frozen(model_cfg, phase1, dev)
    head = inter.load_head(interaction, frozen.n_bases, cfg["dim"], dev)
    tau = _thresholds(thresholds)
    sigma = evaluation_cfg["center_bias_sigma"] if evaluation_cfg["center_bias"] else None
    spatial, basis = inter.analyse(
        frozen,
        head,
        read_parquet(val, "split"),
        tau,
        tuple(model_cfg["input_size"]),
        batch_size=cfg["batch_size"],
        attention_mb=cfg["attention_mb"],
        center_bias_sigma=sigma,
        device=dev,
    )
    log.info("spatial alignment of the saliency-weighted attention:\n%s", spatial.round(4))
    semantic = inter.semantic_from_alignment(
        basis,
        read_parquet(alignment, "alignment"),
        top_k=contributions_cfg["top_k"],
        score=contributions_cfg["score"],
    )
    strongest = semantic[semantic["source"] != semantic["target"]].nlargest(5, "weight")
    log.info(
        "strongest semantic interactions (source -> target): %s",
        ", ".join(f"{r.source} -> {r.target} {r.weight:.3g}" for r in strongest.itertuples()),
    )
    write_parquet(spatial, out["alignment"], "interaction_alignment")
    write_parquet(inter.long_basis_table(basis), out["basis"], "basis_interactions")
    write_parquet(semantic, out["semantic"], "semantic_interactions")


# ------------------------------------------------------------ extended analyses
def run_examples(
    checkpoint: str,
    thresholds: str,
    alignment: str,
    contributions: str,
    probe: str,
    concepts: str,
    model_cfg: dict,
    cfg: dict,
    out: str,
    *,
    min_cover: float,
    batch_size: int,
    score: str,
    device: str,
) -> None:
    """The probe images and probability maps shown for the top concepts."""
    from saldissect.analysis.examples import collect_examples

    dev = pick_device(device)
    model = load_model(checkpoint, model_cfg, "factorised", dev)
    table = collect_examples(
        model,
        read_parquet(probe, "probe"),
        read_parquet(concepts, "concepts"),
        _thresholds(thresholds),
        read_parquet(contributions, "contributions"),
        read_parquet(alignment, "alignment"),
        tuple(model_cfg["input_size"]),
        n_concepts=cfg["concepts"],
        n_images=cfg["images"],
        max_scan=cfg["max_scan"],
        min_cover=min_cover,
        batch_size=batch_size,
        device=dev,
        score=score,
    )
    log.info("%d example images for %d concepts", len(table), table["concept"].nunique())
    write_parquet(table, out, "examples")
