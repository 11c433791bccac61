from saldissect import pipeline

pipeline.setup(snakemake.threads, snakemake.log[0])
pipeline.run_thresholds(
    snakemake.input.model,
    snakemake.input.val,
    snakemake.params.model,
    snakemake.params.thresholds,
    snakemake.output.thresholds,
    device=snakemake.params.device,
)
