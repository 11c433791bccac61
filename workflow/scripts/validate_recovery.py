from saldissect import tabulate
from saldissect.core.errors import setup

setup(snakemake.log[0])
tabulate.run_validation(
    list(snakemake.input.runs),
    snakemake.params.labels,
    snakemake.input.planted,
    dict(snakemake.output.items()),
    min_abs_weight=snakemake.params.min_abs_weight,
    interaction=snakemake.params.interaction,
)
