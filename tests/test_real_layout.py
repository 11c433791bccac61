"""A tiny dataset in the real SALICON and Visual Genome layouts through the whole rule graph.

The files are written in the release formats (jpg images, png maps, `.mat`
fixations with a `gaze` struct, Visual Genome JSON) and read back only through
the workflow's readers, for all three architectures.
"""

import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from worlds import world

from saldissect.core.io import SCHEMAS
from saldissect.data import synthetic

WORLD = world(seed=3)
TRUNK = {"block": "basic", "layers": [1, 1, 1, 1], "widths": [8, 8, 16, 16], "stem_width": 8}
MODELS = {
    "dinet": {
        "arch": "dinet",
        "input_size": [64, 80],
        "n_bases": 8,
        "backbone": TRUNK,
        "encoder_channels": 8,
        "encoder_dilations": [1, 2, 4],
    },
    "salicon": {
        "arch": "salicon",
        "input_size": [64, 80],
        "n_bases": 8,
        "backbone": TRUNK,
        "scale_channels": 8,
    },
    "transalnet": {
        "arch": "transalnet",
        "input_size": [64, 80],
        "n_bases": 8,
        "backbone": TRUNK,
        "transformer_dims": [8, 16, 16],
        "transformer_heads": [2, 2, 2],
        "transformer_layers": 1,
        "decoder_channels": 8,
    },
}
SHORT = {"epochs": 1, "batch_size": 8, "lr": 1.0e-3, "schedule": "onecycle"}
# Every model's tables and figures (every variant, dissection, readouts and
# contributions), DINet's failure analysis.
TARGETS = ("results/salicon/tables/metrics.md", "results/salicon/figures/failures_dinet.png")


@pytest.fixture
def real_layout(tmp_path):
    """SALICON and Visual Genome folders in their release layouts."""
    synthetic.write_world(tmp_path / "data", WORLD, progress=False)
    return tmp_path / "data"


def snakemake(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def dataset(root):
    return {
        "salicon": {
            "source": "salicon",
            "salicon": str(root / "salicon"),
            "probe": str(root / "visual_genome"),
            "scene_graphs": "visual_genome",
            # scene graphs of the validation images, linked by coco_id
            "val_scene_graphs": str(root / "visual_genome_val"),
        }
    }


def test_salicon_preset_plans_every_stage_for_all_three_models(workflow_dir, real_layout):
    (workflow_dir / "paths.yaml").write_text(yaml.safe_dump({"datasets": dataset(real_layout)}))
    plan = snakemake(workflow_dir, "-n", "--configfile", "config/salicon.yaml", "paths.yaml")
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = {
        line.split()[0]: int(line.split()[1])
        for line in plan.stdout.split("Job stats:")[1].splitlines()[3:]
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    for rule in ("train_baseline", "train_phase1", "evaluate_models", "analyse_failures"):
        assert jobs[rule] == 3, (rule, jobs)  # dinet, salicon, transalnet
    # ... and each of them again from the preset's 4 phase-one snapshots
    for rule in ("train_phase2", "compute_thresholds", "dissect_bases", "score_contributions"):
        assert jobs[rule] == 3 * 5, (rule, jobs)
    assert jobs["track_progress"] == 3 and "compare_seeds" not in jobs  # no seed replicates
    assert jobs["prepare_data"] == 1 and "generate_world" not in jobs  # no synthetic data
    for model in ("dinet", "salicon", "transalnet"):
        assert f"results/salicon/{model}/baseline/model.pt" in plan.stdout


@pytest.mark.slow(seconds=110)
def test_real_layout_runs_end_to_end_for_all_three_models(workflow_dir, real_layout):
    config = {
        "threads": 1,
        "device": "cpu",
        "datasets": dataset(real_layout),
        "models": MODELS,
        "train": {"baseline": SHORT, "phase1": SHORT, "phase2": SHORT, "interaction": SHORT},
        "thresholds": {"batch_size": 8},
        "dissection": {"batch_size": 8},
        "evaluation": {"variants": ["baseline", "phase1", "phase2"], "batch_size": 8},
        "replicates": {"seeds": []},
        "progressive": {"epochs": []},
        "contributions": {"bootstrap": 10},
        "failures": {"min_images": 1},
        # the interaction head and the failure and example analyses read P and
        # scores whatever the architecture: test_workflow.py runs them for DINet
        "interaction": {"enabled": False},
    }
    (workflow_dir / "real.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workflow_dir, *TARGETS, "--configfile", "real.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    results = workflow_dir / "results/salicon"
    train = pd.read_parquet(results / "data/train.parquet")
    assert len(train) == 16 and train["fixation_path"].str.endswith(".mat").all()
    concepts = pd.read_parquet(results / "data/concepts.parquet")
    assert {"face", "bus", "sky"} <= set(concepts["concept"])
    for model, grid in (("dinet", 80), ("salicon", 80), ("transalnet", 32 * 40)):
        for variant in ("baseline", "phase1", "phase2"):
            history = pd.read_parquet(results / model / variant / "history.parquet")
            assert tuple(history.columns) == SCHEMAS["history"]
        alignment = pd.read_parquet(results / model / "alignment.parquet")
        assert alignment["basis"].nunique() == 8
        assert (alignment["union"] <= grid * alignment["n_images"]).all()  # the model's grid
        contributions = pd.read_parquet(results / model / "contributions.parquet")
        assert tuple(contributions.columns) == SCHEMAS["contributions"]
    table = pd.read_csv(results / "tables/metrics.csv")
    assert set(zip(table["model"], table["variant"], strict=True)) == {
        (m, v) for m in MODELS for v in ("baseline", "phase1", "phase2")
    }
    assert {"cc", "sim", "kld", "nss", "auc_judd", "sauc"} <= set(table.columns)
    assert (table["n_images"] == 8).all()
    assert (results / "figures/top_semantics_transalnet.png").exists()
    # the validation images' scene graphs reach the failure analysis
    val_concepts = pd.read_parquet(results / "data/val_concepts.parquet")
    assert val_concepts["image_id"].nunique() == 8
    failures = pd.read_csv(results / "tables/failures_dinet.csv")
    assert len(failures) > 0 and (failures["n_worst_images"] == 1).all()
    assert not (workflow_dir / "results/world").exists()  # nothing synthetic was drawn
    # nothing to do now; a key no rule reads as a param reruns nothing (only
    # the forest plot reads failures.top)
    plan = snakemake(workflow_dir, "-n", *TARGETS, "--configfile", "real.yaml").stdout
    assert "Nothing to be done" in plan
    other = {**config, "failures": {**config["failures"], "top": 3}}
    (workflow_dir / "other.yaml").write_text(yaml.safe_dump(other))
    plan = snakemake(workflow_dir, "-n", *TARGETS, "--configfile", "other.yaml").stdout
    assert planned_rules(plan) == {"plot_failures"}, plan[-2000:]
    # changed raw data (a map rewritten) reruns prepare_data and what follows
    changed = next((real_layout / "salicon/maps/train").iterdir())
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    plan = snakemake(workflow_dir, "-n", *TARGETS, "--configfile", "real.yaml").stdout
    assert {"prepare_data", "train_phase1"} <= planned_rules(plan), plan[-2000:]


def planned_rules(plan: str) -> set[str]:
    """The rules of a dry run's jobs."""
    return set(re.findall(r"^(?:local)?rule (\w+):", plan, flags=re.M))
