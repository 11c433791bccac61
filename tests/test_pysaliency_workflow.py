"""A dataset written by pysaliency's own ``to_hdf5`` through the workflow, beside
the same images in the SALICON layout, compared by compare_training_data, for
a torchvision CNN trunk.

Both datasets hold one world's images and fixations (pysaliency's with its own
train/val split); the import's blur is the world's (0.03 of 80 pixels), so the
imported maps are the SALICON layout's maps and every number downstream must
agree between the two sources.
"""

import subprocess

import pandas as pd
import pytest
import yaml
from pysaliency_data import write_pysaliency
from test_plugins import CNN as TORCHVISION_CNN
from test_real_layout import snakemake
from worlds import world

from saldissect.data import synthetic

WORLD = world(seed=3)
CNN = {**TORCHVISION_CNN, "n_bases": 8}
SHORT = {"epochs": 1, "batch_size": 8, "lr": 1.0e-3, "schedule": "onecycle"}


@pytest.fixture
def two_sources(tmp_path):
    """One world as a SALICON-layout folder and as pysaliency's files; the datasets' config."""
    root = tmp_path / "data"
    synthetic.write_world(root, WORLD, progress=False)
    train = write_pysaliency(root / "salicon", root / "pysaliency", splits=("train",))
    val = write_pysaliency(root / "salicon", root / "pysaliency", splits=("val",))
    probe = str(root / "visual_genome")
    return {
        "salicon": {"source": "salicon", "salicon": str(root / "salicon"), "probe": probe},
        "pysal": {
            "source": "pysaliency",
            "stimuli": str(train[0]),
            "fixations": str(train[1]),
            "val_stimuli": str(val[0]),
            "val_fixations": str(val[1]),
            "probe": probe,
            "blur": {"sigma": WORLD["blur_sigma"] * WORLD["width"], "unit": "pixels"},
        },
    }


def config(datasets):
    return {
        "threads": 1,
        "device": "cpu",
        "datasets": datasets,
        # a CNN from torchvision, cut at a stage (a plug-in, docs/method.md 1.1)
        "models": {"mobilenet": CNN},
        "train": {"phase1": SHORT, "phase2": SHORT, "interaction": SHORT},
        "thresholds": {"batch_size": 8},
        "dissection": {"batch_size": 8},
        "evaluation": {"variants": ["phase1", "phase2"], "batch_size": 8},
        "replicates": {"seeds": []},
        "progressive": {"epochs": []},
        "contributions": {"bootstrap": 10},
        "training_data": {"datasets": ["salicon", "pysal"]},
    }


@pytest.mark.slow(seconds=85)
def test_a_pysaliency_dataset_trains_and_evaluates_beside_a_salicon_layout_one(
    workflow_dir, two_sources
):
    (workflow_dir / "two.yaml").write_text(yaml.safe_dump(config(two_sources)))
    targets = [
        "results/comparison/tables/training_data.md",
        "results/pysal/tables/metrics.md",
        "results/salicon/tables/metrics.md",
    ]
    # targets first: --configfile takes every word after it
    run = snakemake(workflow_dir, *targets, "--configfile", "two.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    results = workflow_dir / "results"
    imported = pd.read_parquet(results / "pysal/data/train.parquet")
    assert len(imported) == WORLD["n_train"]
    assert imported["map_path"].str.contains("pysal/import/salicon/maps/train").all()
    assert set(imported["image_id"]) == set(
        pd.read_parquet(results / "salicon/data/train.parquet")["image_id"]
    )
    # the two sources side by side, one column each, equal: the same data
    table = pd.read_csv(results / "comparison/tables/training_data.csv")
    assert {"salicon", "pysal"} <= set(table.columns)
    assert table["pysal"].notna().any()
    pd.testing.assert_series_equal(table["pysal"], table["salicon"], check_names=False)
    metrics = {
        name: pd.read_csv(results / f"{name}/tables/metrics.csv") for name in ("salicon", "pysal")
    }
    assert (metrics["pysal"]["n_images"] == WORLD["n_val"]).all()
    for metric in ("cc", "nss", "auc_judd", "sauc"):
        assert metrics["pysal"][metric].to_numpy() == pytest.approx(
            metrics["salicon"][metric].to_numpy(), abs=1e-6
        )
    # a changed pysaliency file reruns the import and what follows
    stimuli = two_sources["pysal"]["stimuli"]
    subprocess.run(["touch", stimuli], check=True)
    plan = snakemake(workflow_dir, "-n", *targets, "--configfile", "two.yaml").stdout
    assert "rule import_dataset" in plan and "train_phase1" in plan, plan[-2000:]
