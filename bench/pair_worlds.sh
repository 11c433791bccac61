#!/usr/bin/env bash
# The planted pair on the sweep's worlds (`make sweep` stores each world's run under
# results/sweep/<world>/work): bench/pair_seeds.py with training seed 0 on every
# world with a pair (its rank in the source's row), on the world with none and on
# that world's shuffled controls (their largest pair z), for both interaction
# readouts.
#
#     .venv/bin/python bench/record.py pair_worlds -- bash bench/pair_worlds.sh
set -euo pipefail
for readout in attended split; do
  for world in seed3 perm3 perm4 nopair0; do
    .venv/bin/python bench/pair_seeds.py --workdir "results/sweep/$world/work" \
      --configfile world.yaml --seeds 0 --readout "$readout" 2>/dev/null
  done
  for control in synthetic_shuffled synthetic_shuffled_2; do
    .venv/bin/python bench/pair_seeds.py --workdir results/sweep/nopair0/work \
      --configfile world.yaml --dataset "$control" --seeds 0 --readout "$readout" 2>/dev/null
  done
done
