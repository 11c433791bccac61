"""The stages of workflow/rules/data.smk: the synthetic world, datasets of other
layouts imported (docs/method.md 8.6) and the checked, indexed tables of every
dataset (docs/method.md 4.1). One function per rule,
named as the rule (`saldissect.core.stage`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from saldissect.core.io import SCHEMAS, check_schema, write_parquet
from saldissect.core.stage import Files, Params
from saldissect.data import imports, synthetic
from saldissect.data.inputs import (
    InputError,
    index_salicon_split,
    index_val_concepts,
    index_visual_genome,
)

log = logging.getLogger(__name__)


def generate_world(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The synthetic world (`synthetic.write_world`) with ``params["synthetic"]``."""
    root = Path(output["salicon"]).parent
    log.info("drawing the synthetic world under %s", root)
    synthetic.write_world(root, params["synthetic"])


def import_dataset(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """A dataset of another layout (pysaliency, MIT1003, CAT2000) written into
    SALICON's (`imports.import_dataset`), which prepare_data then checks."""
    cfg = params["dataset"]
    log.info("importing a %s dataset into %s", cfg["source"], output["salicon"])
    written = imports.import_dataset(cfg, output["salicon"])
    log.info("%d train and %d val images written", written["train"], written["val"])


def prepare_data(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Index and check the splits and the probe set before any training.

    Every problem is collected, not just the first. With ``on_bad_sample:
    error`` any problem stops the run, listing them all (file and reason, one
    per line) and writing nothing; with ``skip`` bad samples are left out and
    listed in ``rejects.parquet``. Dataset-level problems always stop the run.
    The scene graphs are streamed; images are checked on ``threads`` threads.
    """
    paths, vocabulary = params["paths"], params["vocabulary"]
    on_bad_sample, batch_size = params["on_bad_sample"], params["batch_size"]
    out, dataset_cfg, seed = output, params["dataset"], params["seed"]
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
