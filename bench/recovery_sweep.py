"""Recovery of planted weights on worlds the defaults were not tuned for.

Runs the whole workflow (real run + shuffled control) on several synthetic
worlds: other world/model seeds and permutations of the planted weights, each
in its own scratch copy of the workflow, and prints one row per world with
Spearman and sign agreement of the real run and the control.

    .venv/bin/python bench/recovery_sweep.py --seeds 1 2 --permutations 1 2 --jobs 2
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

ROOT = Path(__file__).resolve().parents[1]


def world_config(seed: int, permutation: int | None) -> dict:
    default = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    weights = default["synthetic"]["weights"]
    if permutation is not None:
        names = sorted(weights)
        values = np.random.default_rng(permutation).permutation([weights[n] for n in names])
        weights = {n: float(v) for n, v in zip(names, values, strict=True)}
    return {"seed": seed, "synthetic": {**default["synthetic"], "seed": seed, "weights": weights}}


def run_world(label: str, config: dict, cores: int, keep: Path | None) -> pd.DataFrame:
    scratch = Path(tempfile.mkdtemp(prefix=f"sweep-{label}-"))
    for name in ("Snakefile", "workflow", "config", "envs"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, scratch / name)
    (scratch / "world.yaml").write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            str(cores),
            "--configfile",
            "world.yaml",
            "--quiet",
            "all",
        ],
        cwd=scratch,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{label} failed in {scratch}:\n{result.stderr[-2000:]}")
    table = pd.read_csv(scratch / "results/synthetic/tables/validation.csv")
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
    parser.add_argument("--jobs", type=int, default=2, help="worlds run at once")
    parser.add_argument("--keep", type=Path, help="copy each world's results here")
    args = parser.parse_args()
    worlds = {f"seed{s}": world_config(s, None) for s in args.seeds}
    worlds |= {f"perm{p}": world_config(0, p) for p in args.permutations}
    cores = max(1, len(os.sched_getaffinity(0)) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        tables = list(pool.map(lambda item: run_world(*item, cores, args.keep), worlds.items()))
    table = pd.concat(tables, ignore_index=True)
    columns = ["world", "dataset", "control", "spearman", "sign_agreement", "n_signed", "minutes"]
    print(table[columns].to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
