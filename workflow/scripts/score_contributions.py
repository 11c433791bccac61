from saldissect import pipeline

pipeline.setup(snakemake.threads, snakemake.log[0])
pipeline.run_contributions(
    snakemake.input.alignment,
    snakemake.input.bootstrap,
    snakemake.input.basis_weights,
    snakemake.params.vocabulary,
    snakemake.params.contributions,
    snakemake.output.contributions,
    snakemake.output.categories,
)
