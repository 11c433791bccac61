from saldissect.analysis.stages import evaluate_models
from saldissect.core.stage import run

run(snakemake, evaluate_models)
