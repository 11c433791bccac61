from saldissect.core.stage import run
from saldissect.report.stages import plot_examples

run(snakemake, plot_examples)
