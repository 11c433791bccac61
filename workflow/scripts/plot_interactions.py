from saldissect import tabulate
from saldissect.core.errors import setup

setup(snakemake.log[0])
tabulate.run_interaction_figure(
    snakemake.input.semantic,
    snakemake.input.contributions,
    snakemake.output.png,
    top=snakemake.params.top,
    title=f"Semantic interactions: {snakemake.wildcards.model} on {snakemake.wildcards.dataset}",
)
