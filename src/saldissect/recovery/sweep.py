"""The recovery sweep (docs/method.md 8, "The sweep"): the recovery check on
synthetic worlds the defaults were not tuned for.

A *world* is the run's configuration with one thing changed: another world
seed (``seed<s>``: other images, and the model trained with that seed), the
planted weights permuted over the concepts (``perm<p>``), only the model's
seed (``model<m>``), or world seed s with no planted interaction
(``nopair<s>``: where no pair effect should stand out). Each world gets
``controls`` shuffled controls, each with its own permutation, so its controls'
mean is pooled (`recovery.pool_controls`), and none of the extras (seed
replicates, phase-one snapshots). Rule ``sweep_world`` runs the workflow on one
world in its own folder; rule ``sweep_recovery`` stacks the worlds' recovery
tables.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from saldissect.recovery.recovery import READOUTS, planted_vs_recovered


def world_names(sweep: dict) -> list[str]:
    """The worlds of a ``sweep`` config section, in order: seeds, permutations, model
    seeds, worlds without the planted pair."""
    return (
        [f"seed{s}" for s in sweep["seeds"]]
        + [f"perm{p}" for p in sweep["permutations"]]
        + [f"model{m}" for m in sweep["model_seeds"]]
        + [f"nopair{s}" for s in sweep["no_pair_seeds"]]
    )


def world_config(config: dict, world: str) -> dict:
    """``config`` (the run's whole configuration) changed into ``world`` (`world_names`):
    its synthetic dataset, its ``sweep.controls`` shuffled controls, no extras."""
    config = copy.deepcopy(config)
    controls = config["sweep"]["controls"]
    kind = world.rstrip("0123456789")
    value = int(world[len(kind) :])
    synthetic = config["synthetic"]
    if kind == "seed":
        synthetic["seed"] = value
        config["seed"] = value
    elif kind == "perm":
        names = sorted(synthetic["weights"])
        values = np.random.default_rng(value).permutation([synthetic["weights"][n] for n in names])
        synthetic["weights"] = {n: float(v) for n, v in zip(names, values, strict=True)}
    elif kind == "model":
        config["seed"] = value
    elif kind == "nopair":
        synthetic["seed"] = value
        config["seed"] = value
        synthetic["interaction"] = {**synthetic.get("interaction", {}), "source": ""}
    else:
        raise ValueError(f"world {world!r}: expected seed<s>, perm<p>, model<m> or nopair<s>")
    world_seed = synthetic["seed"]
    real = {n: d for n, d in config["datasets"].items() if d.get("source") == "synthetic"}
    real = {n: d for n, d in real.items() if not d.get("shuffle_maps")}
    datasets = {name: {"source": "synthetic"} for name in real}
    for index in range(controls):
        name = "synthetic_shuffled" + (f"_{index + 1}" if index else "")
        datasets[name] = {
            "source": "synthetic",
            "shuffle_maps": True,
            "shuffle_seed": world_seed + 1000 * index,
        }
    config["datasets"] = datasets
    config["replicates"] = {**config["replicates"], "seeds": []}
    config["progressive"] = {**config["progressive"], "epochs": []}
    return config


def planted_and_recovered(
    contributions: dict[str, pd.DataFrame], planted: pd.DataFrame
) -> pd.DataFrame:
    """Every readout's recovered value beside the planted weight, per real run
    (``contributions`` by dataset): columns of `planted_vs_recovered` plus
    dataset and readout."""
    return pd.concat(
        [
            planted_vs_recovered(table, planted, column).assign(dataset=dataset, readout=readout)
            for dataset, table in contributions.items()
            for readout, column in READOUTS.items()
        ],
        ignore_index=True,
    )


def sign_errors(concepts: pd.DataFrame, min_abs_weight: float) -> pd.DataFrame:
    """Wrong signs of the real runs by readout, concept kind, planted sign and |weight|
    (``concepts``: `planted_and_recovered` of every world)."""
    signed = concepts[concepts["weight"].abs() >= min_abs_weight].copy()
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
    return (
        signed.groupby(["readout", "kind", "sign", "abs_weight"], observed=True)
        .agg(n=("wrong", "size"), wrong=("wrong", "sum"))
        .reset_index()
    )


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per readout over the worlds' real runs: worlds, how many pass, the lowest
    Spearman and sign agreement, and the largest |Spearman| of the pooled controls."""
    rows = []
    for readout, group in table.groupby("readout", sort=False):
        real = group[group["control"] == "none"]
        pooled = group[group["control"].str.startswith("mean of")]
        rows.append(
            {
                "readout": readout,
                "worlds": real["world"].nunique(),
                "pass": int(real["status"].eq("pass").sum()),
                "min_spearman": real["spearman"].min(),
                "min_sign_agreement": real["sign_agreement"].min(),
                "max_pooled_control": pooled["spearman"].abs().max() if len(pooled) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def pair_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per world, the planted pair's rank in its source's row by S and by the pair
    effect's z, that z, the largest pair z of the real run and of its controls
    (from one readout's rows: the pair columns repeat across readouts)."""
    rows = table[table["readout"] == table["readout"].iloc[0]]
    real = rows[rows["control"] == "none"].set_index("world")
    controls = rows[rows["control"] == "shuffled maps"].groupby("world")["max_pair_z"].max()
    return pd.DataFrame(
        {
            "world": real.index,
            "interaction": real["interaction"].to_numpy(),
            "rank_by_S": real["interaction_rank"].to_numpy(),
            "rank_by_pair_z": real["pair_z_rank"].to_numpy(),
            "row": real["interaction_row"].to_numpy(),
            "pair_z": real["pair_z"].to_numpy(),
            "max_pair_z": real["max_pair_z"].to_numpy(),
            "max_control_pair_z": controls.reindex(real.index).to_numpy(),
        }
    )
