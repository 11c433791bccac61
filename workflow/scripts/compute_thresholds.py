from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_thresholds(
    snakemake.input.model,
    snakemake.input.val,
    snakemake.params.model,
    snakemake.params.thresholds,
    snakemake.output.thresholds,
    device=snakemake.params.device,
)
