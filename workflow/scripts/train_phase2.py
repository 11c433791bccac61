from pathlib import Path

from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_phase2(
    snakemake.input.train,
    snakemake.input.val,
    snakemake.params.model,
    snakemake.params.train,
    snakemake.input.phase1,
    Path(snakemake.output.model).parent,
    snakemake.output.basis_weights,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    device=snakemake.params.device,
    cache=pipeline.prob_cache_inputs(snakemake.input),
)
