from saldissect import tabulate
from saldissect.core.errors import setup

setup(snakemake.log[0])
tabulate.run_seed_stability(
    list(snakemake.input.runs),
    snakemake.params.labels,
    {"csv": snakemake.output.csv, "md": snakemake.output.md, "png": list(snakemake.output.png)},
    dataset=snakemake.wildcards.dataset,
    top=snakemake.params.top,
)
