from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_interaction_analysis(
    snakemake.input.phase1,
    snakemake.input.interaction,
    snakemake.input.thresholds,
    snakemake.input.alignment,
    snakemake.input.val,
    snakemake.params.model,
    snakemake.params.interaction,
    snakemake.params.contributions,
    snakemake.params.evaluation,
    dict(snakemake.output.items()),
    device=snakemake.params.device,
)
