from saldissect.core.stage import run
from saldissect.analysis.stages import evaluate_models

run(snakemake, evaluate_models)
