"""The recovery check can fail: thresholds per readout, significant controls,
and a broken run (contributions permuted) refused over several seeds."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from saldissect.core.config import load_schema, validate_config
from saldissect.core.io import write_parquet
from saldissect.recovery.recovery import accept, failures, recovery_table
from saldissect.recovery.sweep import world_config, world_names

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow/schemas/config.schema.yaml")

ACCEPTANCE = {
    "contrast": {"min_spearman": 0.9, "min_sign_agreement": 1.0},
    "top_k_iou": {"min_spearman": 0.75, "min_sign_agreement": 0.75},
    "regression": {"min_spearman": 0.9, "min_sign_agreement": 1.0},
    "max_control_spearman": 0.3,
    "control_alpha": 0.05,
    "max_pair_rank": None,
}
WEIGHTS = {
    "face": 1.0, "word": 0.7, "bus": 0.5, "giraffe": 0.2, "zebra": -0.4, "helmet": -0.9,
    "ball": -0.6, "sky": -0.7, "field": 0.6, "road": -0.2, "wall": 0.3, "red": 0.4, "blue": -0.5,
}  # fmt: skip


def row(**values):
    base = {
        "dataset": "synthetic", "model": "m", "control": "none", "readout": "contrast",
        "n_concepts": 13, "spearman": 0.95, "spearman_p": 1e-6, "n_signed": 11,
        "sign_agreement": 1.0, "min_abs_weight": 0.3, "wrong_signs": "",
        "interaction": "word -> face", "interaction_rank": 3.0, "interaction_row": 13,
        "pair_z_rank": 2.0, "pair_z": 2.5, "max_pair_z": 4.0,
    }  # fmt: skip
    return {**base, **values}


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ({}, "pass"),
        ({"spearman": 0.85}, "fail: Spearman 0.850 < 0.9"),
        ({"spearman": float("nan")}, "fail: Spearman nan < 0.9"),  # nothing credited
        ({"readout": "top-k IoU", "spearman": 0.8, "sign_agreement": 0.8}, "pass"),
        ({"sign_agreement": 10 / 11, "wrong_signs": "wall +0.30 -> -0.18"}, "fail: signs"),
        ({"control": "shuffled maps", "spearman": 0.45, "spearman_p": 0.12}, "pass"),
        ({"control": "shuffled maps", "spearman": -0.7, "spearman_p": 0.008}, "fail: control"),
    ],
)
def test_each_row_is_judged_by_its_readouts_and_controls_thresholds(values, status):
    table = accept(pd.DataFrame([row(**values)]), ACCEPTANCE)
    assert table["status"].iloc[0].startswith(status), table["status"].iloc[0]


def test_the_planted_pair_counts_when_a_rank_is_required():
    table = pd.DataFrame([row()])
    assert accept(table, ACCEPTANCE)["status"].iloc[0] == "pass"
    strict = accept(table, {**ACCEPTANCE, "max_pair_rank": 1})
    assert strict["status"].iloc[0] == "fail: planted pair's rank by pair effect 2 > 1"
    assert accept(table, {**ACCEPTANCE, "max_pair_rank": 2})["status"].iloc[0] == "pass"


def test_several_controls_are_judged_by_their_pooled_mean():
    rows = [
        row(control="shuffled maps", spearman=0.6, spearman_p=0.03, dataset=f"c{i}") for i in (1, 2)
    ]
    rows.append(
        row(control="mean of 2 shuffles", dataset="2 controls", spearman=0.1, spearman_p=0.6)
    )
    table = accept(pd.DataFrame(rows), ACCEPTANCE)
    assert list(table["status"]) == ["not checked (pooled below)"] * 2 + ["pass"]
    assert failures(table) == []


def world(tmp_path, contributions: dict[str, float]):
    planted = pd.DataFrame(
        {"concept": list(WEIGHTS), "category": "other", "kind": "object",
         "weight": list(WEIGHTS.values())}
    )  # fmt: skip
    write_parquet(planted, tmp_path / "planted.parquet", "planted")
    values = np.array([contributions[c] for c in WEIGHTS])
    table = pd.DataFrame(
        {"concept": list(WEIGHTS), "category": "other", "contribution": values,
         "normalized": values, "rank": 0, "contribution_low": values, "contribution_high": values,
         "normalized_low": values, "normalized_high": values, "contrast": values,
         "contrast_low": values, "contrast_high": values, "regression": values,
         "regression_low": values, "regression_high": values}
    )  # fmt: skip
    write_parquet(table, tmp_path / "contributions.parquet", "contributions")
    labels = [{"dataset": "synthetic", "model": "m", "control": False}]
    table = recovery_table(
        [str(tmp_path / "contributions.parquet")], labels, str(tmp_path / "planted.parquet"),
        min_abs_weight=0.3,
    )  # fmt: skip
    return accept(table, ACCEPTANCE)


@pytest.mark.parametrize("seed", range(8))
def test_a_recovering_run_passes_and_a_broken_one_fails_for_every_seed(tmp_path, seed):
    """Recovered = planted x a random positive gain + noise passes; the same values
    permuted over the concepts (a run whose answer is unrelated) fails."""
    rng = np.random.default_rng(seed)
    weights = np.array(list(WEIGHTS.values()))
    recovered = weights * rng.uniform(0.5, 2.0) + rng.normal(0, 0.03, len(weights))
    good = world(tmp_path, dict(zip(WEIGHTS, recovered, strict=True)))
    assert (good["status"] == "pass").all(), good[["readout", "status"]]
    broken = world(tmp_path, dict(zip(WEIGHTS, rng.permutation(recovered), strict=True)))
    lines = failures(broken)
    assert len(lines) == 3 and all(line.startswith("synthetic/m (none,") for line in lines), lines


def test_sweep_worlds_change_one_thing_each():
    config = validate_config(yaml.safe_load((ROOT / "config/config.yaml").read_text()), SCHEMA)
    sweep = {"seeds": [3], "permutations": [4], "model_seeds": [5], "no_pair_seeds": [0]}
    assert world_names(sweep) == ["seed3", "perm4", "model5", "nopair0"]
    config["sweep"] = {**sweep, "controls": 3}
    weights = config["synthetic"]["weights"]
    seeded = world_config(config, "seed3")
    assert seeded["synthetic"]["seed"] == 3 and seeded["seed"] == 3
    assert seeded["synthetic"]["weights"] == weights
    permuted = world_config(config, "perm4")["synthetic"]["weights"]
    assert sorted(permuted.values()) == sorted(weights.values()) and permuted != weights
    assert world_config(config, "model5")["synthetic"] == config["synthetic"]
    assert world_config(config, "nopair0")["synthetic"]["interaction"]["source"] == ""
    datasets = seeded["datasets"]
    controls = [d for d in datasets.values() if d.get("shuffle_maps")]
    assert len(controls) == 3 and len({d["shuffle_seed"] for d in controls}) == 3
    assert seeded["replicates"]["seeds"] == [] and seeded["progressive"]["epochs"] == []
    assert config["synthetic"]["seed"] == 0  # the run's own config is left as it was
    with pytest.raises(ValueError, match="expected seed<s>"):
        world_config(config, "other1")
