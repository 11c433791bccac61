from saldissect.analysis.stages import analyse_failures
from saldissect.core.stage import run

run(snakemake, analyse_failures)
