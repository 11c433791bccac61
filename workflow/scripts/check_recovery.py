from saldissect.core.stage import run
from saldissect.recovery.stages import check_recovery

run(snakemake, check_recovery)
