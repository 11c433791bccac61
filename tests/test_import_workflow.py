"""The workflow from the reference code's checkpoints: nothing trained, everything scored.

Reference-layout state dicts (written from the architecture description, see
test_reference.py) for a small DINet's baseline, phase one and phase two are
named under ``models.<m>.checkpoints``; the run imports them, thresholds,
dissects, evaluates and tabulates, and no training rule runs.
"""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from test_reference import TRUNK, reference_state
from test_workflow import snakemake
from worlds import ANY_RUN

E, N = 8, 6


def _config(checkpoints: dict) -> dict:
    return {
        "synthetic": {"n_train": 16, "n_val": 16, "n_probe": 12, "height": 64, "width": 80},
        "datasets": {"synthetic": {"source": "synthetic"}},
        "models": {
            "dinet_ref": {
                "arch": "dinet",
                "input_size": [64, 80],
                "n_bases": N,
                "encoder_channels": E,
                "encoder_dilations": [1, 2, 4],
                "weights": "none",
                "backbone": {**TRUNK, "dilated": True},
                "checkpoints": checkpoints,
            }
        },
        "evaluation": {"variants": ["baseline", "phase1", "phase2"]},
        "replicates": {"seeds": [1]},
        "progressive": {"epochs": [1]},
        "contributions": {"bootstrap": 10},
        "failures": {"min_images": 1},
        "recovery": {"acceptance": ANY_RUN},  # random reference weights recover nothing
    }


def _snakemake(cwd, *args):
    return snakemake(cwd, *args, configfile="ref.yaml")


@pytest.fixture
def checkpoints(tmp_path):
    paths = {}
    for phase in ("baseline", "phase1", "phase2"):
        paths[phase] = str(tmp_path / f"{phase}_model_best.pth")
        torch.save(reference_state("dinet", phase, e=E, n=N, seed=1), paths[phase])
    return paths


@pytest.mark.slow(seconds=65)
def test_imported_checkpoints_run_end_to_end_with_no_training_rule(workflow_dir, checkpoints):
    (workflow_dir / "ref.yaml").write_text(yaml.safe_dump(_config(checkpoints)))
    run = _snakemake(workflow_dir)
    assert run.returncode == 0, run.stderr[-3000:]
    benchmarks = workflow_dir / "results/benchmarks/synthetic"
    ran = {p.stem for p in benchmarks.rglob("*.tsv")}
    assert not {r for r in ran if r.startswith("train_")}, ran
    assert {"import_checkpoint", "import_phase2", "dissect_bases", "evaluate_models"} <= ran
    results = workflow_dir / "results/synthetic/dinet_ref"
    metrics = pd.read_parquet(results / "metrics.parquet")
    assert set(metrics["variant"]) == {"baseline", "phase1", "phase2"}
    # the basis weights are the phase-two file's kernel sums
    weights = pd.read_parquet(results / "basis_weights.parquet")
    kernel = torch.load(checkpoints["phase2"], weights_only=True)["decoder.sal_decoder_1.weight"]
    np.testing.assert_allclose(weights["weight"], kernel.sum(dim=(0, 2, 3)).numpy(), atol=1e-6)
    assert pd.read_parquet(results / "contributions.parquet").shape[0] > 0
    # no seed replicate, snapshot or interaction variant of an imported model
    assert not (workflow_dir / "results/synthetic/dinet_ref.seed1").exists()
    assert not (results / "interaction").exists()


def test_a_checkpoint_that_does_not_fit_its_entry_stops_the_import(workflow_dir, checkpoints):
    config = _config(checkpoints)
    config["models"]["dinet_ref"]["n_bases"] = N + 2
    (workflow_dir / "ref.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(workflow_dir, "results/synthetic/dinet_ref/phase1/model.pt")
    assert run.returncode != 0
    log = (
        workflow_dir / "results/logs/synthetic/dinet_ref/phase1/import_checkpoint.log"
    ).read_text()
    assert "n_bases is 8 there, 6 in the file" in log
    assert "Traceback" not in log


def test_checkpoints_without_phase_one_are_refused_before_anything_runs(workflow_dir, checkpoints):
    config = _config({"phase2": checkpoints["phase2"]})
    (workflow_dir / "ref.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(workflow_dir, "-n")
    assert run.returncode != 0
    assert "checkpoints names ['phase2'] but not phase1" in run.stdout + run.stderr
