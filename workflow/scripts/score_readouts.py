from saldissect.analysis.stages import score_readouts
from saldissect.core.stage import run

run(snakemake, score_readouts)
