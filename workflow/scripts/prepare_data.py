from saldissect.core.stage import run
from saldissect.data.stages import prepare_data

run(snakemake, prepare_data)
