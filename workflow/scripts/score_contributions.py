from saldissect.analysis.stages import score_contributions
from saldissect.core.stage import run

run(snakemake, score_contributions)
