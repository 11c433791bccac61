from saldissect import pipeline

pipeline.setup(snakemake.threads, snakemake.log[0])
pipeline.prepare_data(
    snakemake.params.dataset,
    snakemake.params.vocabulary,
    paths=dict(snakemake.input.items()),
    out=dict(snakemake.output.items()),
    seed=snakemake.params.seed,
)
