from saldissect.analysis.stages import collect_examples
from saldissect.core.stage import run

run(snakemake, collect_examples)
