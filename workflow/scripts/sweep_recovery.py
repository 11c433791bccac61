from saldissect.core.stage import run
from saldissect.recovery.stages import sweep_recovery

run(snakemake, sweep_recovery)
