from saldissect.core.stage import run
from saldissect.interaction.stages import analyse_interactions

run(snakemake, analyse_interactions)
