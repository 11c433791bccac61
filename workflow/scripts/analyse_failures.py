from saldissect import tabulate
from saldissect.core.errors import setup

setup(snakemake.log[0])
tabulate.run_failures(
    snakemake.input.image_scores,
    snakemake.input.val,
    snakemake.input.val_concepts,
    snakemake.params.vocabulary,
    snakemake.params.failures,
    dict(snakemake.output.items()),
    title=f"{snakemake.wildcards.model} on {snakemake.wildcards.dataset}",
)
