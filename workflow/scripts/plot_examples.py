from saldissect import tabulate
from saldissect.core.errors import setup

setup(snakemake.log[0])
tabulate.run_examples_figure(
    snakemake.input.examples,
    snakemake.input.concepts,
    snakemake.output.png,
    f"Dissection examples: {snakemake.wildcards.model} on {snakemake.wildcards.dataset}",
)
