from saldissect.core.stage import run
from saldissect.training.stages import import_phase2

run(snakemake, import_phase2)
