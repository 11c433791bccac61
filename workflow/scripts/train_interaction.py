from saldissect.core.stage import run
from saldissect.interaction.stages import train_interaction

run(snakemake, train_interaction)
