from saldissect import pipeline

pipeline.setup(snakemake.threads, snakemake.log[0])
pipeline.run_tables(
    snakemake.input.metrics,
    snakemake.input.contributions,
    snakemake.input.categories,
    dict(snakemake.output.items()),
    dataset=snakemake.wildcards.dataset,
)
