from saldissect.core.stage import run
from saldissect.recovery.stages import sweep_world

run(snakemake, sweep_world)
