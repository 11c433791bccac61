from saldissect import pipeline

pipeline.setup(snakemake.threads, snakemake.log[0])
pipeline.generate_world(snakemake.params.synthetic, snakemake.output.salicon.rsplit("/", 1)[0])
