from saldissect.core.stage import run
from saldissect.data.stages import generate_world

run(snakemake, generate_world)
