from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.generate_world(snakemake.params.synthetic, snakemake.output.salicon.rsplit("/", 1)[0])
