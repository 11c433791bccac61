"""Recovery of planted weights on worlds the defaults were not tuned for.

Runs the workflow up to the contributions (real run + several shuffled
controls, each with its own permutation) on several synthetic worlds: other
world/model seeds, permutations of the planted weights, and the default world
trained with other model seeds (the seed replicates of `make run`), each in its
own scratch copy of the workflow. Prints, per world, Spearman and sign
agreement of the real run, of every control, and of the controls' mean (the
pooled row of the recovery table: one control is a single draw from a null
with standard deviation 1 / sqrt(n - 1), 0.29 for 13 concepts), then every
concept with |weight| >= recovery.min_abs_weight whose sign came out wrong.

    .venv/bin/python bench/recovery_sweep.py --seeds 0 1 2 --permutations 1 2 --controls 3

``--set key=value`` (dotted key, YAML value, repeatable) changes the embedded
default for every world, e.g. ``--set models.dinet_small.n_bases=128``.
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

from saldissect.recovery.recovery import READOUTS, planted_vs_recovered, recovery_table

ROOT = Path(__file__).resolve().parents[1]


def default_config(overrides: list[str] = ()) -> dict:
    """config/config.yaml with ``key.path=value`` overrides (values parsed as YAML)."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: expected key.path=value")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SystemExit(f"--set {item}: {part} is not a section of config/config.yaml")
            node = node[part]
        node[leaf] = yaml.safe_load(value)
        if isinstance(node[leaf], str):  # YAML 1.1 reads 5e-4 (no dot) as a string
            try:
                node[leaf] = float(node[leaf])
            except ValueError:
                pass
    return config


def world_config(
    seed: int,
    permutation: int | None,
    controls: int = 1,
    *,
    model_seed: int | None = None,
    default: dict | None = None,
) -> dict:
    """The embedded default with another world and model seed (``model_seed``
    apart, when given), or permuted weights, and ``controls`` shuffled controls
    (the first uses the top-level seed)."""
    default = default or default_config()
    weights = default["synthetic"]["weights"]
    if permutation is not None:
        names = sorted(weights)
        values = np.random.default_rng(permutation).permutation([weights[n] for n in names])
        weights = {n: float(v) for n, v in zip(names, values, strict=True)}
    datasets = {
        name: dataset
        for name, dataset in default["datasets"].items()
        if controls or not dataset.get("shuffle_maps")
    }
    for index in range(1, controls):
        datasets[f"synthetic_shuffled_{index + 1}"] = {
            "source": "synthetic",
            "shuffle_maps": True,
            "shuffle_seed": seed + 1000 * index,
        }
    return {
        **default,
        "seed": seed if model_seed is None else model_seed,
        "datasets": datasets,
        # only the main runs: no seed replicates or phase-one snapshots
        "replicates": {**default["replicates"], "seeds": []},
        "progressive": {**default["progressive"], "epochs": []},
        "synthetic": {**default["synthetic"], "seed": seed, "weights": weights},
    }


def run_world(
    label: str, config: dict, cores: int, keep: Path | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recovery table of one world and its real runs' concepts (planted vs recovered)."""
    scratch = Path(tempfile.mkdtemp(prefix=f"sweep-{label}-"))
    for name in ("Snakefile", "workflow", "config", "envs"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, scratch / name)
    (scratch / "world.yaml").write_text(yaml.safe_dump(config))
    models = list(config["models"])
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
    # The workflow's own recovery table (pooled controls included), without
    # the planted pair's rank, which would need interaction training.
    labels = [
        {"dataset": d, "model": m, "control": config["datasets"][d].get("shuffle_maps", False)}
        for d, m in runs
    ]
    table = recovery_table(
        [str(scratch / target) for target in targets],
        labels,
        str(scratch / "results/world/planted.parquet"),
        min_abs_weight=config["recovery"]["min_abs_weight"],
    )
    table.insert(0, "world", label)
    table["minutes"] = (time.perf_counter() - start) / 60
    planted = pd.read_parquet(scratch / "results/world/planted.parquet")
    concepts = pd.concat(
        [
            planted_vs_recovered(pd.read_parquet(scratch / target), planted, column).assign(
                world=label, dataset=d, model=m, readout=readout
            )
            for target, (d, m), run in zip(targets, runs, labels, strict=True)
            for readout, column in READOUTS.items()
            if not run["control"]
        ],
        ignore_index=True,
    )
    if keep:
        shutil.copytree(scratch / "results", keep / label, dirs_exist_ok=True)
        concepts.to_csv(keep / label / "concepts.csv", index=False)
    shutil.rmtree(scratch)
    return table, concepts


def sign_errors(concepts: pd.DataFrame, min_abs_weight: float) -> pd.DataFrame:
    """Wrong signs by readout, concept kind, planted sign and |weight| (real runs
    only; kept runs from before the contrast readout count as top-k IoU)."""
    signed = concepts[concepts["weight"].abs() >= min_abs_weight].copy()
    if "readout" not in signed:
        signed["readout"] = "top-k IoU"
    signed["sign"] = np.where(signed["weight"] > 0, "+", "-")
    edges = [min_abs_weight, *(e for e in (0.45, 0.65) if e > min_abs_weight)]
    labels = [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges, edges[1:], strict=False)]
    signed["abs_weight"] = pd.cut(
        signed["weight"].abs(),
        [*edges, np.inf],
        right=False,
        labels=[*labels, f">= {edges[-1]:g}"],
    )
    signed["wrong"] = np.sign(signed["weight"]) != np.sign(signed["contribution"])
    signed["never_credited"] = signed["contribution"] == 0
    return (
        signed.groupby(["readout", "kind", "sign", "abs_weight"], observed=True)
        .agg(
            n=("wrong", "size"),
            wrong=("wrong", "sum"),
            never_credited=("never_credited", "sum"),
        )
        .reset_index()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--permutations", type=int, nargs="*", default=[1, 2])
    parser.add_argument(
        "--model-seeds",
        type=int,
        nargs="*",
        default=[],
        help="the default world, these model seeds",
    )
    parser.add_argument("--controls", type=int, default=3, help="shuffled controls per world")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worlds run at once")
    parser.add_argument("--keep", type=Path, help="copy each world's results here")
    parser.add_argument(
        "--summarise",
        type=Path,
        nargs="+",
        metavar="KEPT",
        help="run nothing: the wrong signs by kind over the concepts.csv of earlier --keep runs",
    )
    args = parser.parse_args()
    default = default_config(args.set)
    min_abs_weight = default["recovery"]["min_abs_weight"]
    if args.summarise:
        found = sorted(f for folder in args.summarise for f in folder.glob("*/concepts.csv"))
        if not found:
            raise SystemExit(f"no */concepts.csv under {[str(f) for f in args.summarise]}")
        concepts = pd.concat([pd.read_csv(f) for f in found], ignore_index=True)
        print(f"{len(found)} runs")
        print(sign_errors(concepts, min_abs_weight).to_markdown(index=False))
        return
    worlds = {f"seed{s}": world_config(s, None, args.controls, default=default) for s in args.seeds}
    worlds |= {
        f"perm{p}": world_config(0, p, args.controls, default=default) for p in args.permutations
    }
    worlds |= {
        f"model{m}": world_config(0, None, args.controls, model_seed=m, default=default)
        for m in args.model_seeds
    }
    cores = max(1, len(os.sched_getaffinity(0)) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda item: run_world(*item, cores, args.keep), worlds.items()))
    table = pd.concat([result[0] for result in results], ignore_index=True)
    concepts = pd.concat([result[1] for result in results], ignore_index=True)
    columns = ["world", "dataset", "control", "readout", "spearman", "spearman_p"]
    columns += ["sign_agreement"]
    print(table[columns + ["n_signed", "minutes"]].to_markdown(index=False, floatfmt=".3f"))
    real = table[(table["control"] == "none") & (table["wrong_signs"] != "")]
    for row in real.itertuples():
        print(f"{row.world} {row.dataset} ({row.readout}): {row.wrong_signs}")
    print(sign_errors(concepts, min_abs_weight).to_markdown(index=False))


if __name__ == "__main__":
    main()
