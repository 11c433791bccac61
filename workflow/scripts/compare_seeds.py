from saldissect.core.stage import run
from saldissect.report.stages import compare_seeds

run(snakemake, compare_seeds)
