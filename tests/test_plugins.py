"""Networks from outside the package (docs/method.md 1.1): a module under tests/
and torchvision trunks (a vision transformer and a CNN) get the factorised heads,
the first two go through every stage of the workflow with no change to its code,
and a bad plug-in stops the run with one line."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from saldissect.core.config import ConfigError, load_schema, validate_config
from saldissect.models import networks
from saldissect.models.plugins import PluginError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow/schemas/config.schema.yaml")
TESTS = str(Path(__file__).resolve().parent)
#: A vision transformer small enough for a test: 6 x 6 patches of 16 pixels.
VIT = {
    "arch": "torchvision",
    "network": "torchvision.models:VisionTransformer",
    "layer": "encoder",
    "network_options": {
        "image_size": 96, "patch_size": 16, "num_layers": 2, "num_heads": 2,
        "hidden_dim": 32, "mlp_dim": 64,
    },
    "input_size": [96, 96],
    "n_bases": 16,
}  # fmt: skip
CNN = {
    "arch": "torchvision",
    "network": "mobilenet_v3_small",
    "layer": "features.6",
    "input_size": [96, 128],
    "n_bases": 16,
}
MINE = {
    "arch": "module",
    "module": "plugins.tiny_nets:strided_cnn",
    "options": {"width": 8},
    "input_size": [96, 128],
    "n_bases": 16,
}


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.syspath_prepend(TESTS)


@pytest.mark.parametrize(
    ("entry", "grid", "channels"),
    [(MINE, (12, 16), 8), (VIT, (6, 6), 32), (CNN, (6, 8), 40)],
)
def test_a_plug_in_gets_the_factorised_heads(entry, grid, channels):
    model = networks.build(
        validate_config({"models": {"m": entry}}, SCHEMA)["models"]["m"], "factorised"
    )
    out = model(torch.zeros(2, 3, *entry["input_size"], dtype=torch.uint8))
    assert tuple(out["prob"].shape) == (2, 16, *grid)
    assert tuple(out["saliency"].shape) == (2, 1, *entry["input_size"])
    assert model.features.out_channels == channels
    model.set_head("reformulated")
    assert tuple(model(torch.zeros(1, 3, *entry["input_size"]))["saliency"].shape[-2:]) == tuple(
        entry["input_size"]
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**MINE, "module": "plugins.nothere:f"}, "cannot import plugins.nothere"),
        ({**MINE, "module": "plugins.tiny_nets:missing"}, "plugins.tiny_nets has no missing"),
        ({**MINE, "module": "plugins.tiny_nets:flat_output", "options": {}}, "a B x C x h x w"),
        ({**MINE, "module": "plugins.tiny_nets:not_a_module", "options": {}}, "not an nn.Module"),
        ({**CNN, "layer": "features.99"}, "has no layer 'features.99'"),
        ({**CNN, "network": "no_such_net"}, "not a torchvision classification network"),
        ({**VIT, "input_size": [96, 128]}, "fails on a 96 x 128 image"),
    ],
)  # fmt: skip
def test_a_bad_plug_in_is_refused_in_one_line(entry, message):
    with pytest.raises(PluginError, match=message) as caught:
        networks.build(entry, "factorised")
    assert "\n" not in str(caught.value)


def test_keys_of_other_architectures_are_refused():
    for entry, key in ((MINE, "backbone"), (CNN, "module"), (MINE, "weights"), (CNN, "trunk")):
        with pytest.raises(ConfigError, match=key):
            validate_config({"models": {"m": {**entry, key: "x"}}}, SCHEMA)
    with pytest.raises(ConfigError, match="module"):
        validate_config({"models": {"m": {"arch": "module"}}}, SCHEMA)
    with pytest.raises(ConfigError, match="network_options"):
        validate_config({"models": {"m": {"arch": "dinet", "network_options": {}}}}, SCHEMA)


def run(workflow_dir, config, *targets):
    (workflow_dir / "plugins.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *targets]
        + ["--configfile", "plugins.yaml"],
        cwd=workflow_dir,
        capture_output=True,
        text=True,
        env=env,
    )


TINY = {
    "datasets": {"synthetic": {"source": "synthetic"}},
    "synthetic": {"n_train": 32, "n_val": 16, "n_probe": 24},
    "train": {
        phase: {"epochs": 1, "batch_size": 16, "lr": 2.0e-3, "schedule": "onecycle"}
        for phase in ("phase1", "phase2", "interaction")
    },
    "replicates": {"seeds": []},
    "progressive": {"epochs": []},
    "contributions": {"bootstrap": 10},
    "interaction": {"dim": 16},
}


@pytest.mark.slow(seconds=110)
def test_plug_ins_go_through_every_stage(workflow_dir):
    """A module under tests/ and a vision transformer: trained, dissected, scored,
    evaluated and their interactions analysed, with no change to the workflow;
    then a bad one stops the run before any training. (The CNN trunk gets its
    heads above; a third model here would cost the suite a minute.)"""
    config = {**TINY, "models": {"mine": MINE, "vit": VIT}}
    targets = [
        f"results/synthetic/{m}/{name}.parquet"
        for m in config["models"]
        for name in ("contributions", "metrics", "semantic_interactions")
    ]
    done = run(workflow_dir, config, *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    for model in config["models"]:
        contributions = pd.read_parquet(
            workflow_dir / f"results/synthetic/{model}/contributions.parquet"
        )
        assert len(contributions) > 0 and contributions["regression"].notna().all()
        metrics = pd.read_parquet(workflow_dir / f"results/synthetic/{model}/metrics.parquet")
        assert set(metrics["variant"]) == {"phase1", "phase2"}
    bad = {
        **TINY,
        "models": {"bad": {**MINE, "module": "plugins.tiny_nets:flat_output", "options": {}}},
    }
    refused = run(workflow_dir, bad, "results/synthetic/bad/contributions.parquet")
    assert refused.returncode != 0
    assert "models.bad: module 'plugins.tiny_nets:flat_output' returned (1, " in refused.stderr
    assert not (workflow_dir / "results/synthetic/bad").exists()  # refused before any job
