from saldissect.analysis.stages import dissect_bases
from saldissect.core.stage import run

run(snakemake, dissect_bases)
