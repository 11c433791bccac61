from saldissect.core.stage import run
from saldissect.recovery.stages import accept_recovery

run(snakemake, accept_recovery)
