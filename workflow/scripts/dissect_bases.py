from saldissect.core.stage import run
from saldissect.analysis.stages import dissect_bases

run(snakemake, dissect_bases)
