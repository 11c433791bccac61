from saldissect.core.stage import run
from saldissect.analysis.stages import analyse_failures

run(snakemake, analyse_failures)
