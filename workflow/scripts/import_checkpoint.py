from saldissect import pipeline
from saldissect.core.errors import setup

setup(snakemake.log[0], 1)
pipeline.import_checkpoint(
    snakemake.input.checkpoint,
    snakemake.params.phase,
    snakemake.params.model,
    snakemake.output.model,
    snakemake.output.history,
    snakemake.output.get("basis_weights"),
)
