from saldissect.analysis.stages import compute_thresholds
from saldissect.core.stage import run

run(snakemake, compute_thresholds)
