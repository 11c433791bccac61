from saldissect import pipeline

pipeline.setup(snakemake.threads, snakemake.log[0])
pipeline.run_validation(
    list(snakemake.input.runs),
    snakemake.params.labels,
    snakemake.input.planted,
    dict(snakemake.output.items()),
    min_abs_weight=snakemake.params.min_abs_weight,
    interactions=list(snakemake.input.interactions),
    interaction=snakemake.params.interaction,
)
