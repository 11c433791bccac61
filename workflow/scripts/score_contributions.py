from saldissect.core.stage import run
from saldissect.analysis.stages import score_contributions

run(snakemake, score_contributions)
