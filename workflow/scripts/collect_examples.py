from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_examples(
    snakemake.input.model,
    snakemake.input.thresholds,
    snakemake.input.alignment,
    snakemake.input.contributions,
    snakemake.input.probe,
    snakemake.input.concepts,
    snakemake.params.model,
    snakemake.params.examples,
    snakemake.output.examples,
    min_cover=snakemake.params.dissection["min_cover"],
    batch_size=snakemake.params.dissection["batch_size"],
    score=snakemake.params.score,
    device=snakemake.params.device,
)
