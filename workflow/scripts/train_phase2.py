from saldissect.core.stage import run
from saldissect.training.stages import train_phase2

run(snakemake, train_phase2)
