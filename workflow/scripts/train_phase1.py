from saldissect.core.stage import run
from saldissect.training.stages import train_phase1

run(snakemake, train_phase1)
