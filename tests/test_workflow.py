"""One end-to-end run of the whole workflow on a tiny synthetic world, its
tables rebuilt from artifacts, and its HTML report opened in a headless browser."""

import os
import re
import shutil
import subprocess
import sys

import browser
import pandas as pd
import pytest
import yaml

from saldissect.core.io import SCHEMAS

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
  interaction: {epochs: 2, batch_size: 16, lr: 1.0e-2, weight_decay: 0.0, schedule: onecycle}
replicates: {seeds: []}
progressive: {epochs: []}
# Two epochs on 48 images do not recover the planted weights: the check runs
# with limits any run meets, and once below with the default's, where it fails.
recovery:
  acceptance:
    contrast: {min_spearman: -1.0, min_sign_agreement: 0.0}
    top_k_iou: {min_spearman: -1.0, min_sign_agreement: 0.0}
    regression: {min_spearman: -1.0, min_sign_agreement: 0.0}
    max_control_spearman: 1.0
"""
# The extended analyses on top: a seed replicate, a phase-one snapshot, fewer
# bootstrap replicates.
EXTENDED = {
    "replicates": {"seeds": [1]},
    "progressive": {"epochs": [1]},
    "contributions": {"bootstrap": 20},
}
# Rules that read artifacts and write tables and figures only.
TABLE_RULES = {
    "tables",
    "make_tables",
    "check_recovery",
    "accept_recovery",
    "plot_interactions",
    "plot_examples",
    "analyse_failures",
    "plot_failures",
    "track_progress",
    "compare_seeds",
    "compare_training_data",
}

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
    "synthetic/dinet_small/readouts.parquet": "readouts",
    "synthetic/dinet_small/categories.parquet": "categories",
    "synthetic/dinet_small/interaction/history.parquet": "history",
    "synthetic/dinet_small/interaction_alignment.parquet": "interaction_alignment",
    "synthetic/dinet_small/basis_interactions.parquet": "basis_interactions",
    "synthetic/dinet_small/semantic_interactions.parquet": "semantic_interactions",
    "world/planted.parquet": "planted",
    "synthetic/data/val_concepts.parquet": "concepts",
    "synthetic/dinet_small/image_scores.parquet": "image_scores",
    "synthetic/dinet_small/alignment_bootstrap.parquet": "alignment_bootstrap",
    "synthetic/dinet_small/failures.parquet": "failures",
    "synthetic/dinet_small/failure_images.parquet": "failure_images",
    "synthetic/dinet_small/examples.parquet": "examples",
    "synthetic/dinet_small.seed1/contributions.parquet": "contributions",
    "synthetic/dinet_small.epoch1/contributions.parquet": "contributions",
}


def snakemake(cwd, *args, configfile="tiny.yaml"):
    return subprocess.run(
        # targets before --configfile, which takes every argument after it
        [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", configfile],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def executed_rules(output: str) -> set[str]:
    """Rules of a Snakemake run's job table."""
    table = output.split("Job stats:")[1].split("Select jobs")[0] if "Job stats:" in output else ""
    rows = [line.split()[0] for line in table.splitlines() if re.match(r"^\w+\s+\d+$", line)]
    return set(rows) - {"total"}


@pytest.mark.slow(seconds=360)
def test_whole_workflow_on_a_tiny_world(workflow_dir):
    config = yaml.safe_load(TINY)
    for key, value in EXTENDED.items():
        config[key] = {**config.get(key, {}), **value}
    (workflow_dir / "tiny.yaml").write_text(yaml.safe_dump(config))
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
    recovery = pd.read_csv(results / "synthetic/tables/recovery.csv")
    assert set(recovery["control"]) == {"none", "shuffled maps"}
    assert recovery["spearman"].between(-1, 1).all()
    # every readout of every run: the paper's top-k IoU, the contrast, the regression
    assert (recovery.groupby(["dataset", "model"])["readout"].nunique() == 3).all()
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
    # bootstrap intervals on every ranked concept and every category
    contributions = pd.read_parquet(results / "synthetic/dinet_small/contributions.parquet")
    ranked = contributions[contributions["rank"] != 0]
    assert ranked[["contribution_low", "contribution_high"]].notna().all().all()
    assert (ranked["contribution_low"] <= ranked["contribution_high"]).all()
    for readout in ("contrast", "regression"):
        low, high = contributions[f"{readout}_low"], contributions[f"{readout}_high"]
        assert low.notna().all() and (low <= high).all()
    # the contrast readout is sum_n w[n] contrast(n, c) of the alignment table
    weights = pd.read_parquet(results / "synthetic/dinet_small/basis_weights.parquet")
    weighted = alignment["contrast"] * alignment["basis"].map(weights.set_index("basis")["weight"])
    expected = weighted.groupby(alignment["concept"]).sum()
    contrast = contributions.set_index("concept")["contrast"]
    assert (contrast - expected.reindex(contrast.index)).abs().max() < 1e-5
    replicates = pd.read_parquet(results / "synthetic/dinet_small/alignment_bootstrap.parquet")
    assert replicates["replicate"].nunique() == 20
    top_table = pd.read_csv(results / "synthetic/tables/top_semantics.csv")
    assert {"contribution_low", "contribution_high"} <= set(top_table.columns)
    # the seed replicate and the phase-one snapshot went through every stage
    seeds = pd.read_csv(results / "synthetic/tables/seed_stability.csv")
    assert list(seeds[["run_a", "run_b"]].iloc[0]) == ["seed 0", "seed 1"] and len(seeds) == 1
    assert seeds["kendall_tau"].between(-1, 1).all()
    assert set(recovery["model"]) == {"dinet_small", "dinet_small.seed1"}
    progressive = pd.read_csv(results / "synthetic/tables/progressive_dinet_small.csv")
    assert progressive["epoch"].min() == 1 and progressive["epoch"].nunique() == 2
    failures = pd.read_csv(results / "synthetic/tables/failures_dinet_small.csv")
    assert (failures["n_worst_images"] == 2).all()  # 10% of 16 validation images, rounded up
    training = pd.read_csv(results / "comparison/tables/training_data.csv")
    assert {"synthetic", "synthetic_shuffled"} <= set(training.columns)
    # nothing left to do: a second run plans no job
    again = snakemake(workflow_dir, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    # (two whole runs give identical artifacts: tests/test_slurm.py; training
    # from the same seed: tests/test_training.py)
    tables = [
        "synthetic/tables/recovery.csv",
        "synthetic/tables/metrics.csv",
        "synthetic/tables/top_semantics.csv",
    ]
    before = {t: (results / t).read_bytes() for t in tables}
    # `snakemake tables` rebuilds every table and figure from the artifacts alone
    figures = sorted(p.relative_to(results) for p in results.glob("*/figures/*.png"))
    for folder in [*results.glob("*/tables"), *results.glob("*/figures")]:
        shutil.rmtree(folder)
    rebuilt = snakemake(workflow_dir, "tables")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert executed_rules(rebuilt.stdout + rebuilt.stderr) <= TABLE_RULES
    assert sorted(p.relative_to(results) for p in results.glob("*/figures/*.png")) == figures
    assert all((results / t).read_bytes() == before[t] for t in tables)
    assert (results / "synthetic/recovery_accepted.txt").read_text().startswith("recovery accepted")
    assert set(pd.read_csv(results / "synthetic/tables/recovery.csv")["status"]) == {"pass"}
    # with the default's thresholds this run fails, naming its rows; the table stays
    strict = {**config, "recovery": {}}
    (workflow_dir / "strict.yaml").write_text(yaml.safe_dump(strict))
    refused = snakemake(workflow_dir, configfile="strict.yaml")
    assert refused.returncode != 0
    log = (results / "logs/synthetic/accept_recovery.log").read_text()
    assert "the recovery check fails" in log and "synthetic/dinet_small (none, " in log
    statuses = pd.read_csv(results / "synthetic/tables/recovery.csv")["status"]
    assert statuses.str.startswith("fail").any()
    restored = snakemake(workflow_dir)
    assert restored.returncode == 0, restored.stderr[-3000:]
    check_report(workflow_dir, figures)


def check_report(workflow_dir, figures):
    """The report opens in a headless browser without a network request and every
    figure in it decodes and shows."""
    report = workflow_dir / "report.html"
    made = snakemake(workflow_dir, "--report", str(report))
    assert made.returncode == 0, made.stderr[-3000:]
    assert "ERROR" not in made.stderr, made.stderr[-3000:]  # e.g. a broken caption
    if browser.find_browser() is None:
        if os.environ.get("SALDISSECT_REQUIRE_BROWSER"):
            pytest.fail("no headless Chromium (apt install chromium-headless-shell)")
        pytest.skip("no headless Chromium to open the report")
    alone = workflow_dir / "opened"
    alone.mkdir()
    shutil.copy(report, alone / "report.html")  # nothing beside it to load
    dom, requested = browser.render(alone / "report.html", alone)
    assert requested == set(), f"the report fetched {sorted(requested)}"
    shown = browser.visible_text(dom)
    for category in ("Contributions", "Dissection examples", "Failure patterns", "Uncertainty"):
        assert category in shown, category
    images = browser.embedded_images(report.read_text())
    assert sorted(name for name, _ in images) == sorted(f.name for f in figures)
    page = browser.image_check_page(images, alone / "figures.html")
    sizes = browser.decoded_sizes(browser.render(page, alone)[0])
    assert len(sizes) == len(images) and all(w > 100 and h > 100 for w, h in sizes.values())
