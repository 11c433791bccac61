from saldissect.core.stage import run
from saldissect.training.stages import import_checkpoint

run(snakemake, import_checkpoint)
