from saldissect.core.stage import run
from saldissect.report.stages import track_progress

run(snakemake, track_progress)
