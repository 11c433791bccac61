from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], snakemake.threads)
pipeline.run_evaluation(
    {variant: snakemake.input[variant] for variant in snakemake.params.variants},
    snakemake.input.val,
    snakemake.params.model,
    snakemake.params.evaluation,
    snakemake.output.metrics,
    snakemake.output.image_scores,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
