from saldissect.core.stage import run
from saldissect.report.stages import compare_training_data

run(snakemake, compare_training_data)
