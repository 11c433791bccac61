from pathlib import Path

from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_phase1(
    snakemake.input.train,
    snakemake.input.val,
    snakemake.params.model,
    snakemake.params.train,
    Path(snakemake.output.model).parent,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    device=snakemake.params.device,
    head=snakemake.params.head,
    snapshots=snakemake.params.snapshots,
)
