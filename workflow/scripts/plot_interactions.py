from saldissect.core.stage import run
from saldissect.report.stages import plot_interactions

run(snakemake, plot_interactions)
