from saldissect import tabulate
from saldissect.core.errors import setup

setup(snakemake.log[0])
tabulate.run_tables(
    snakemake.input.metrics,
    snakemake.input.contributions,
    snakemake.input.categories,
    dict(snakemake.output.items()),
    dataset=snakemake.wildcards.dataset,
    image_scores=list(snakemake.input.image_scores),
    confidence=snakemake.params.confidence,
    seed=snakemake.params.seed,
)
