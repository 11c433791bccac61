from saldissect.core.stage import run
from saldissect.analysis.stages import collect_examples

run(snakemake, collect_examples)
