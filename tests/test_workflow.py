"""One end-to-end run of the whole workflow on a tiny synthetic world."""

import subprocess
import sys

import pandas as pd
import pytest

from saldissect.io import SCHEMAS

TINY = """
synthetic:
  n_train: 48
  n_val: 16
  n_probe: 24
models:
  dinet_small:
    arch: dinet
    input_size: [96, 128]
    n_bases: 16
    encoder_channels: 16
    encoder_dilations: [1, 2, 4]
    weights: none
    backbone:
      {block: basic, layers: [1, 1, 1, 1], widths: [8, 8, 16, 16], stem_width: 8, dilated: true}
train:
  phase1: {epochs: 2, batch_size: 16, lr: 2.0e-3, schedule: onecycle, hflip: true}
  phase2: {epochs: 2, batch_size: 16, lr: 1.0e-2, weight_decay: 0.0, schedule: onecycle}
"""

ARTIFACTS = {
    "synthetic/data/train.parquet": "split",
    "synthetic/data/val.parquet": "split",
    "synthetic/data/probe.parquet": "probe",
    "synthetic/data/concepts.parquet": "concepts",
    "synthetic/dinet_small/phase1/history.parquet": "history",
    "synthetic/dinet_small/phase2/history.parquet": "history",
    "synthetic/dinet_small/basis_weights.parquet": "basis_weights",
    "synthetic/dinet_small/thresholds.parquet": "thresholds",
    "synthetic/dinet_small/alignment.parquet": "alignment",
    "synthetic/dinet_small/metrics.parquet": "metrics",
    "synthetic/dinet_small/contributions.parquet": "contributions",
    "synthetic/dinet_small/categories.parquet": "categories",
    "synthetic/dinet_small/interaction/history.parquet": "history",
    "synthetic/dinet_small/interaction_alignment.parquet": "interaction_alignment",
    "synthetic/dinet_small/basis_interactions.parquet": "basis_interactions",
    "synthetic/dinet_small/semantic_interactions.parquet": "semantic_interactions",
    "world/planted.parquet": "planted",
}


def snakemake(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_whole_workflow_on_a_tiny_world(workflow_dir):
    (workflow_dir / "tiny.yaml").write_text(TINY)
    run = snakemake(workflow_dir)
    assert run.returncode == 0, run.stderr[-3000:]
    results = workflow_dir / "results"
    for path, schema in ARTIFACTS.items():
        frame = pd.read_parquet(results / path)
        assert tuple(frame.columns) == SCHEMAS[schema], path
        assert len(frame) > 0, path
    rejects = pd.read_parquet(results / "synthetic/data/rejects.parquet")
    assert tuple(rejects.columns) == SCHEMAS["rejects"] and rejects.empty  # a clean world
    alignment = pd.read_parquet(results / "synthetic/dinet_small/alignment.parquet")
    assert alignment["basis"].nunique() == 16
    assert alignment["mean_iou"].between(0, 1).all()
    history = pd.read_parquet(results / "synthetic/dinet_small/phase1/history.parquet")
    assert sorted(history["epoch"].unique()) == [0, 1]
    validation = pd.read_csv(results / "synthetic/tables/validation.csv")
    assert set(validation["control"]) == {"none", "shuffled maps"}
    assert validation["spearman"].between(-1, 1).all()
    for figure in (
        "synthetic/figures/recovery.png",
        "synthetic/figures/categories.png",
        "synthetic/figures/top_semantics_dinet_small.png",
        "synthetic/figures/semantic_interactions_dinet_small.png",
    ):
        assert (results / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for rule in ("train_phase1", "dissect_bases"):
        assert (results / f"benchmarks/synthetic/dinet_small/{rule}.tsv").exists()
        assert (results / f"logs/synthetic/dinet_small/{rule}.log").stat().st_size > 0
    # nothing left to do: a second run plans no job
    again = snakemake(workflow_dir, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    # rerunning a stage gives identical tables (whole runs are compared in
    # tests/test_slurm.py, training from the same seed in tests/test_training.py)
    tables = [
        "synthetic/tables/validation.csv",
        "synthetic/tables/metrics.csv",
        "synthetic/tables/top_semantics.csv",
    ]
    before = {t: (results / t).read_bytes() for t in tables}
    rerun = snakemake(workflow_dir, "--forcerun", "dissect_bases")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert all((results / t).read_bytes() == before[t] for t in tables)
