from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_prob_cache(
    snakemake.input.phase1,
    {"train": snakemake.input.train, "val": snakemake.input.val},
    snakemake.params.model,
    {"train": snakemake.output.train, "val": snakemake.output.val},
    batch_size=snakemake.params.batch_size,
    threads=snakemake.threads,
    device=snakemake.params.device,
)
