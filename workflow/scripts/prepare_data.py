from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.prepare_data(
    snakemake.params.dataset,
    snakemake.params.vocabulary,
    paths=snakemake.params.paths,
    out=dict(snakemake.output.items()),
    seed=snakemake.params.seed,
    batch_size=snakemake.params.batch_size,
    on_bad_sample=snakemake.params.on_bad_sample,
    threads=snakemake.threads,
)
