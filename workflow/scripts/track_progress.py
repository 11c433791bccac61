from saldissect import tabulate
from saldissect.core.errors import setup

setup(snakemake.log[0])
tabulate.run_progressive(
    list(snakemake.input.runs),
    snakemake.params.epochs,
    snakemake.input.history,
    dict(snakemake.output.items()),
    title=f"Progressive fine-tuning: {snakemake.wildcards.model} on {snakemake.wildcards.dataset}",
    top=snakemake.params.top,
    last_epoch=snakemake.params.last_epoch,
)
