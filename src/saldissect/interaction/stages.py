"""The stages of workflow/rules/interaction.smk: the interaction variant's
training and its analyses (docs/method.md 6). One function per rule, named as
the rule (`saldissect.core.stage`); rule ``plot_interactions`` (report) draws
the semantic interactions."""

from __future__ import annotations

import logging

from saldissect.analysis.stages import read_basis_weights, read_thresholds
from saldissect.core.io import read_parquet, write_parquet
from saldissect.core.stage import Files, Params
from saldissect.interaction import interactions as inter
from saldissect.training.stages import prob_cache_inputs, training_run
from saldissect.training.train import pick_device

log = logging.getLogger(__name__)


def train_interaction(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The interaction variant: self-attention over grid cells on the frozen phase one."""
    inter.train_interaction(
        **training_run(input, output, params),
        phase1_checkpoint=input["phase1"],
        dim=params["dim"],
        readout=params["readout"],
        threads=threads,
        device=params["device"],
        cache=prob_cache_inputs(input),
    )


def analyse_interactions(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Spatial alignment, basis and semantic interactions of the interaction variant."""
    model_cfg, cfg = params["model"], params["interaction"]
    contributions_cfg, evaluation_cfg = params["contributions"], params["evaluation"]
    dev = pick_device(params["device"])
    frozen = inter.load_frozen(model_cfg, input["phase1"], dev)
    head = inter.load_head(input["interaction"], frozen.n_bases, cfg["dim"], dev)
    sigma = evaluation_cfg["center_bias_sigma"] if evaluation_cfg["center_bias"] else None
    spatial, basis = inter.analyse(
        frozen,
        head,
        read_parquet(input["val"], "split"),
        read_thresholds(input["thresholds"]),
        tuple(model_cfg["input_size"]),
        batch_size=cfg["batch_size"],
        attention_mb=cfg["attention_mb"],
        center_bias_sigma=sigma,
        device=dev,
    )
    log.info("spatial alignment of the saliency-weighted attention:\n%s", spatial.round(4))
    semantic = inter.semantic_from_alignment(
        basis,
        read_parquet(input["alignment"], "alignment"),
        top_k=contributions_cfg["top_k"],
        score=contributions_cfg["score"],
    )
    strongest = semantic[semantic["source"] != semantic["target"]].nlargest(5, "weight")
    log.info(
        "strongest semantic interactions (source -> target): %s",
        ", ".join(f"{r.source} -> {r.target} {r.weight:.3g}" for r in strongest.itertuples()),
    )
    effects = inter.pair_effects(
        frozen,
        head,
        read_basis_weights(input["basis_weights"]),
        read_parquet(input["probe"], "probe"),
        read_parquet(input["concepts"], "concepts"),
        tuple(model_cfg["input_size"]),
        min_cover=params["dissection"]["min_cover"],
        min_images=cfg["min_images"],
        batch_size=cfg["batch_size"],
        device=dev,
    )
    semantic = inter.with_pair_effects(semantic, effects)
    largest = effects.dropna(subset=["pair_z"]).nlargest(5, "pair_z")
    log.info(
        "largest pair effects (source <- target present, Welch z): %s",
        ", ".join(f"{r.source} <- {r.target} {r.pair_z:+.2f}" for r in largest.itertuples()),
    )
    write_parquet(spatial, output["alignment"], "interaction_alignment")
    write_parquet(inter.long_basis_table(basis), output["basis"], "basis_interactions")
    write_parquet(semantic, output["semantic"], "semantic_interactions")
