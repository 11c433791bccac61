import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from saldissect.core.config import ConfigError, load_schema, validate_config

ROOT = Path(__file__).resolve().parents[1]

SCHEMA = load_schema(ROOT / "workflow/schemas/config.schema.yaml")
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_embedded_default_is_valid_and_complete():
    filled = validate_config(DEFAULT, SCHEMA)
    assert filled["thresholds"]["quantile"] == 0.8
    assert filled["datasets"]["synthetic"]["shuffle_maps"] is False  # default filled in


def test_defaults_fill_a_minimal_config():
    filled = validate_config({}, SCHEMA)
    assert filled["models"]["dinet"]["n_bases"] == 512  # the paper's settings
    assert filled["train"]["phase1"]["lr"] == 1e-4
    assert filled["contributions"]["top_k"] == 5


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"thresholds": {"quantlie": 0.8}}, "thresholds"),
        ({"thresholds": {"quantile": 1.5}}, "thresholds.quantile"),
        ({"synthetic": {"n_train": 0}}, "synthetic.n_train"),
        (
            {"models": {"dinet_small": {"arch": "dinet", "n_bases": "many"}}},
            "models.dinet_small.n_bases",
        ),
        ({"train": {"phase1": {"schedule": "cosine"}}}, "train.phase1.schedule"),
        ({"device": "tpu"}, "device"),
        ({"colour": 1}, "<top level>"),
    ],
)
def test_wrong_key_or_value_is_rejected_naming_the_key(patch, key):
    config = {**DEFAULT, **patch}
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert f"config key '{key}'" in str(error.value)


@pytest.mark.parametrize(
    ("entry", "refused"),
    [
        ({"arch": "dinet", "scale_channels": 64}, ["scale_channels"]),
        (
            {"arch": "salicon", "encoder_channels": 64, "conv_bias": True},
            ["conv_bias", "encoder_channels"],
        ),
        ({"arch": "transalnet", "baseline_conv": False}, ["baseline_conv"]),
    ],
)
def test_a_model_key_of_another_architecture_is_refused_not_dropped(entry, refused):
    from saldissect.models.networks import build

    with pytest.raises(ConfigError) as error:
        validate_config({**DEFAULT, "models": {"mine": entry}}, SCHEMA)
    lines = str(error.value).splitlines()[1:]
    arch = entry["arch"]
    assert sorted(lines) == [
        f"  config key 'models.mine.{key}': does not apply to arch {arch}" for key in refused
    ]
    # the library refuses them too, naming them and what the architecture takes
    with pytest.raises(ConfigError, match=f"{refused[0]}.*does not apply to arch {arch}.*n_bases"):
        build({**entry, "weights": "none"}, "factorised")


def test_a_models_own_keys_are_accepted_and_keep_the_architectures_defaults():
    filled = validate_config({**DEFAULT, "models": {"s": {"arch": "salicon"}}}, SCHEMA)
    assert "encoder_channels" not in filled["models"]["s"]  # no other architecture's default
    assert filled["models"]["s"]["n_bases"] == 512


def test_every_problem_is_reported_at_once():
    config = {**DEFAULT, "threads": 0, "seed": -1}
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert "'threads'" in str(error.value) and "'seed'" in str(error.value)


def test_every_schema_key_is_documented():
    def resolve(node):
        if "$ref" not in node:
            return node
        return {**SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]], **node}

    def walk(node, path):
        node = resolve(node)
        for name, sub in node.get("properties", {}).items():
            sub = resolve(sub)
            assert sub.get("description") or sub.get("properties"), (
                f"{path}{name} lacks a description"
            )
            walk(sub, f"{path}{name}.")
        if node.get("type") == "object" and "additionalProperties" not in node:
            raise AssertionError(f"{path or 'top level'} does not set additionalProperties")

    walk(SCHEMA, "")


def _dry_run(workflow_dir, config_text: str) -> subprocess.CompletedProcess:
    """``snakemake -n`` in the scratch workflow with ``config_text`` as the config file."""
    (workflow_dir / "extra.yaml").write_text(config_text)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", "extra.yaml"],
        cwd=workflow_dir,
        capture_output=True,
        text=True,
    )


def test_snakemake_stops_on_a_bad_key(workflow_dir):
    result = _dry_run(workflow_dir, "thresholds:\n  quantile: 2.0\n")
    assert result.returncode != 0
    assert "config key 'thresholds.quantile'" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("datasets", "message"),
    [
        (
            "  control: {source: synthetic, shuffle_maps: true}\n"
            "  control_2: {source: synthetic, shuffle_maps: true, shuffle_seed: 0}\n",
            "shuffle the same data with the same seed (0)",
        ),
        (
            "  synthetic_2: {source: synthetic, shuffle_seed: 4}\n",
            "datasets.synthetic_2.shuffle_seed is set but shuffle_maps is false",
        ),
    ],
)
def test_snakemake_stops_on_controls_that_cannot_differ(workflow_dir, datasets, message):
    result = _dry_run(workflow_dir, "datasets:\n" + datasets)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def _effective(workflow_dir, *args) -> dict:
    """The configuration a run would use (rule effective_config), every default filled in."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "results/effective_config.yaml", *args],
        cwd=workflow_dir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return yaml.safe_load((workflow_dir / "results/effective_config.yaml").read_text())


# docs/method.md's reference values for every training and analysis key.
PAPER_TRAINING = {
    "epochs": 30,
    "batch_size": 10,
    "lr": 1e-4,
    "weight_decay": 1e-7,
    "schedule": "step",
    "lr_decay_every": 2,
    "lr_decay": 0.1,
}


def test_the_salicon_preset_gets_the_papers_value_for_every_training_and_analysis_key(
    workflow_dir,
):
    config = _effective(workflow_dir, "--configfile", "config/salicon.yaml")
    synthetic = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for phase in ("baseline", "phase1", "phase2", "interaction"):
        train = config["train"][phase]
        assert {k: train[k] for k in PAPER_TRAINING} == PAPER_TRAINING, phase
        assert train["sparsity"] == 0.0 and train["hflip"] is False and not train["offset"]
        assert train["cache_images"] == 0 and train["frozen_maps"] in ("auto", "recompute")
    assert config["interaction"]["dim"] == 256
    assert config["interaction"]["batch_size"] != synthetic["interaction"]["batch_size"]
    assert config["thresholds"]["quantile"] == 0.8
    assert config["dissection"]["min_cover"] == 0.5
    assert {k: config["contributions"][k] for k in ("top_k", "top_n", "score")} == {
        "top_k": 5,
        "top_n": 30,
        "score": "mean_iou",
    }
    assert config["evaluation"]["center_bias"] is True
    assert config["evaluation"]["variants"] == ["baseline", "phase1", "phase2"]
    # nothing of the synthetic world or its CPU-sized model leaks in
    assert set(config["models"]) == {"dinet", "salicon", "transalnet"}
    assert set(config["datasets"]) == {"salicon"}
    assert config["models"]["dinet"]["n_bases"] == 512


def test_without_a_preset_the_embedded_default_lies_under_the_command_line(workflow_dir):
    config = _effective(workflow_dir, "--config", "seed=3")
    assert config["seed"] == 3
    assert config["train"]["phase2"]["lr"] == 1e-2  # the synthetic CPU tuning
    assert "dinet_small" in config["models"]


def test_p_that_does_not_fit_in_memory_is_cached_on_disk_on_a_cpu(workflow_dir):
    """frozen_maps: auto keeps P in memory when it fits cache_mb; past it, on a
    CPU, rule cache_prob_maps writes it once and phase two reads it."""
    fits = _dry_run(workflow_dir, "seed: 0\n")
    assert fits.returncode == 0, fits.stderr
    assert "cache_prob_maps" not in fits.stdout
    tight = _dry_run(
        workflow_dir,
        "train:\n  phase2: {cache_mb: 0}\n  interaction: {cache_mb: 0, frozen_maps: recompute}\n",
    )
    assert tight.returncode == 0, tight.stderr
    jobs = tight.stdout
    assert "cache_prob_maps" in jobs
    assert "frozen/train.npy" in jobs
