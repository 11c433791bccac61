from saldissect.core.stage import run
from saldissect.data.stages import import_dataset

run(snakemake, import_dataset)
