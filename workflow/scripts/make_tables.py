from saldissect.core.stage import run
from saldissect.report.stages import make_tables

run(snakemake, make_tables)
