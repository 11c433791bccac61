"""The stages of workflow/rules/training.smk: the baseline, phase one and phase two
(docs/method.md 1-2), the cache of P for phase two, and the import of the
reference code's checkpoints (docs/method.md 10). One function per rule, named
as the rule (`saldissect.core.stage`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from saldissect.core.io import SCHEMAS, CheckpointError, read_parquet, write_parquet
from saldissect.core.stage import Files, Params
from saldissect.models import reference
from saldissect.training.train import (
    load_model,
    pick_device,
    train_saliency,
    write_prob_cache,
)
from saldissect.training.train import (
    train_phase2 as train_reformulated,
)

log = logging.getLogger(__name__)


def train_baseline(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The model without factorisation (plain head), for the baseline metrics."""
    _train_saliency(input, output, params, threads, head="plain")


def train_phase1(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Phase one (factorised head), keeping the model after the epochs in
    ``params["snapshots"]`` too (``epoch<e>.pt``)."""
    _train_saliency(input, output, params, threads, head="factorised")


def training_run(input: Files, output: Files, params: Params) -> dict:
    """What every training rule hands its trainer, by the trainers' argument names:
    the train and val splits, the model entry, the training settings with the
    run's seed, and the run's folder."""
    return {
        "train": read_parquet(input["train"], "split"),
        "val": read_parquet(input["val"], "split"),
        "model_cfg": params["model"],
        "cfg": {**params["train"], "seed": params["seed"]},
        "out_dir": Path(output["model"]).parent,
    }


def _train_saliency(input: Files, output: Files, params: Params, threads: int, head: str) -> None:
    train_saliency(
        **training_run(input, output, params),
        head=head,
        threads=threads,
        device=params["device"],
        snapshots=params.get("snapshots", []),
    )


def train_phase2(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Phase two (the reformulated head on the frozen phase one) and its basis weights."""
    _, weights = train_reformulated(
        **training_run(input, output, params),
        phase1_checkpoint=input["phase1"],
        threads=threads,
        device=params["device"],
        cache=prob_cache_inputs(input),
    )
    log.info(
        "basis weights: %d positive, %d negative, mean %.4f",
        (weights["weight"] > 0).sum(),
        (weights["weight"] < 0).sum(),
        weights["weight"].mean(),
    )
    write_parquet(weights, output["basis_weights"], "basis_weights")


def prob_cache_inputs(input: Files) -> dict[str, str] | None:
    """The cache files among a rule's named inputs (``train_cache``, ``val_cache``), if any."""
    if "train_cache" not in input:
        return None
    return {"train": str(input["train_cache"]), "val": str(input["val_cache"])}


def cache_prob_maps(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The float16 P of the frozen phase one for every image of each split (one file each)."""
    model_cfg = params["model"]
    dev = pick_device(params["device"])
    model = load_model(input["phase1"], model_cfg, "factorised", dev)
    for split in ("train", "val"):
        shape = write_prob_cache(
            model,
            read_parquet(input[split], "split"),
            tuple(model_cfg["input_size"]),
            output[split],
            batch_size=params["batch_size"],
            threads=threads,
            device=dev,
        )
        log.info("%s: P of %d images, %d x %d x %d, float16", output[split], *shape)


def import_checkpoint(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """A reference checkpoint (`saldissect.models.reference`) as the ``model.pt`` of
    ``params["phase"]``.

    The file must fit the run's ``models:`` entry exactly: a size the file's
    tensors give otherwise (N, DINet's E, ...) stops the job naming the key, as
    every later stage builds the model from that entry. The history is empty
    (nothing was trained here); a phase-two file also gives the basis weights.
    """
    source, phase, model_cfg = input["checkpoint"], params["phase"], params["model"]
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
    reference.save_imported(imported, output["model"])
    write_parquet(pd.DataFrame(columns=SCHEMAS["history"]), output["history"], "history")
    if "basis_weights" in output:
        weights = reference.basis_weights_frame(imported.model)
        write_parquet(weights, output["basis_weights"], "basis_weights")
    log.info("imported %s %s from %s", imported.arch, phase, source)


def import_phase2(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """A reference phase-two checkpoint as phase two's ``model.pt`` and basis weights."""
    import_checkpoint(input, output, params, threads, wildcards)
