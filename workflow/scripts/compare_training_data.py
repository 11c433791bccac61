from saldissect import tabulate
from saldissect.core.errors import setup

setup(snakemake.log[0])
tabulate.run_training_data(
    list(snakemake.input.categories),
    list(snakemake.input.contributions),
    snakemake.params.labels,
    {"csv": snakemake.output.csv, "md": snakemake.output.md, "png": list(snakemake.output.png)},
    top=snakemake.params.top,
)
