from saldissect.core.stage import run
from saldissect.training.stages import train_baseline

run(snakemake, train_baseline)
