from saldissect.core.stage import run
from saldissect.training.stages import cache_prob_maps

run(snakemake, cache_prob_maps)
