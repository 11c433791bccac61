from saldissect.core.stage import run
from saldissect.analysis.stages import compute_thresholds

run(snakemake, compute_thresholds)
