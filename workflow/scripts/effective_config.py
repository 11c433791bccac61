from saldissect.core.stage import run
from saldissect.report.stages import effective_config

run(snakemake, effective_config)
