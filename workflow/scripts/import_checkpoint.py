from saldissect import pipeline

pipeline.setup(1, snakemake.log[0])
pipeline.import_checkpoint(
    snakemake.input.checkpoint,
    snakemake.params.phase,
    snakemake.params.model,
    snakemake.output.model,
    snakemake.output.history,
    snakemake.output.get("basis_weights"),
)
