from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_contributions(
    snakemake.input.alignment,
    snakemake.input.bootstrap,
    snakemake.input.basis_weights,
    snakemake.params.vocabulary,
    snakemake.params.contributions,
    snakemake.output.contributions,
    snakemake.output.categories,
)
