"""Recovery of planted weights on worlds the defaults were not tuned for.

Runs the workflow up to the contributions (real run + several shuffled
controls, each with its own permutation) on several synthetic worlds: other
world/model seeds and permutations of the planted weights, each in its own
scratch copy of the workflow. Prints, per world, Spearman and sign agreement
of the real run, of every control, and of the controls' mean (the pooled row
of the validation table: one control is a single draw from a null with
standard deviation 1 / sqrt(n - 1), 0.29 for 13 concepts).

    .venv/bin/python bench/recovery_sweep.py --seeds 0 1 2 --permutations 1 2 --controls 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from saldissect.tabulate import run_validation

ROOT = Path(__file__).resolve().parents[1]


def world_config(seed: int, permutation: int | None, controls: int = 1) -> dict:
    """The embedded default with another world and model seed, or permuted weights,
    and ``controls`` shuffled controls (the first uses the top-level seed)."""
    default = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    weights = default["synthetic"]["weights"]
    if permutation is not None:
        names = sorted(weights)
        values = np.random.default_rng(permutation).permutation([weights[n] for n in names])
        weights = {n: float(v) for n, v in zip(names, values, strict=True)}
    datasets = dict(default["datasets"])
    for index in range(1, controls):
        datasets[f"synthetic_shuffled_{index + 1}"] = {
            "source": "synthetic",
            "shuffle_maps": True,
            "shuffle_seed": seed + 1000 * index,
        }
    return {
        "seed": seed,
        "datasets": datasets,
        # only the main runs: no seed replicates or phase-one snapshots
        "replicates": {**default["replicates"], "seeds": []},
        "progressive": {**default["progressive"], "epochs": []},
        "synthetic": {**default["synthetic"], "seed": seed, "weights": weights},
    }


def run_world(label: str, config: dict, cores: int, keep: Path | None) -> pd.DataFrame:
    scratch = Path(tempfile.mkdtemp(prefix=f"sweep-{label}-"))
    for name in ("Snakefile", "workflow", "config", "envs"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, scratch / name)
    (scratch / "world.yaml").write_text(yaml.safe_dump(config))
    default = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    models = list(default["models"])
    runs = [(d, m) for d in config["datasets"] for m in models]
    targets = [f"results/{d}/{m}/contributions.parquet" for d, m in runs]
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *targets]
        + ["--cores", str(cores), "--configfile", "world.yaml", "--quiet"],
        cwd=scratch,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{label} failed in {scratch}:\n{result.stderr[-2000:]}")
    # The workflow's own validation table (pooled controls included), without
    # the planted pair's rank, which would need interaction training.
    labels = [
        {"dataset": d, "model": m, "control": config["datasets"][d].get("shuffle_maps", False)}
        for d, m in runs
    ]
    out = {kind: str(scratch / f"validation.{kind}") for kind in ("csv", "md", "png")}
    table = run_validation(
        [str(scratch / target) for target in targets],
        labels,
        str(scratch / "results/world/planted.parquet"),
        out,
        min_abs_weight=default["validation"]["min_abs_weight"],
    )
    table.insert(0, "world", label)
    table["minutes"] = (time.perf_counter() - start) / 60
    if keep:
        shutil.copytree(scratch / "results", keep / label, dirs_exist_ok=True)
    shutil.rmtree(scratch)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--permutations", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--controls", type=int, default=3, help="shuffled controls per world")
    parser.add_argument("--jobs", type=int, default=2, help="worlds run at once")
    parser.add_argument("--keep", type=Path, help="copy each world's results here")
    args = parser.parse_args()
    worlds = {f"seed{s}": world_config(s, None, args.controls) for s in args.seeds}
    worlds |= {f"perm{p}": world_config(0, p, args.controls) for p in args.permutations}
    cores = max(1, len(os.sched_getaffinity(0)) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        tables = list(pool.map(lambda item: run_world(*item, cores, args.keep), worlds.items()))
    table = pd.concat(tables, ignore_index=True)
    columns = ["world", "dataset", "control", "spearman", "spearman_p", "sign_agreement"]
    print(table[columns + ["n_signed", "minutes"]].to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
