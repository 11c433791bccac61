from saldissect.core.stage import run
from saldissect.report.stages import plot_failures

run(snakemake, plot_failures)
