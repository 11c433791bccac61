from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_dissection(
    snakemake.input.model,
    snakemake.input.thresholds,
    snakemake.input.probe,
    snakemake.input.concepts,
    snakemake.params.model,
    snakemake.params.dissection,
    snakemake.output.alignment,
    snakemake.output.bootstrap,
    contributions=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
)
