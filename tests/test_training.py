"""Training resumes after a hard kill; checkpoints never run code when loaded."""

import os
import pickle
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from worlds import world

from saldissect.core.io import load_checkpoint
from saldissect.data import synthetic
from saldissect.data.inputs import read_salicon_split

WORLD = world(
    n_train=48,
    n_val=16,
    n_probe=1,
    objects_per_image=[2, 3],
    object_size=[0.3, 0.4],
    observers=4,
    weights={"face": 1.0, "sky": -1.0},
)
MODEL = {
    "arch": "dinet",
    "input_size": [64, 80],
    "n_bases": 8,
    "encoder_channels": 8,
    "encoder_dilations": [1, 2, 4],
    "backbone": {"block": "basic", "layers": [1, 1], "widths": [8, 8], "stem_width": 8},
}
TRAIN = {
    "epochs": 6,
    "batch_size": 8,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "schedule": "step",
    "lr_decay_every": 2,
    "lr_decay": 0.5,
    "hflip": False,
    "sparsity": 0.0,
    "cache_images": 1000,
    "seed": 0,
}
SCRIPT = """
import sys, pandas as pd
from saldissect.core.errors import setup
from saldissect.training.train import train_saliency
setup(sys.argv[2], 1)
splits = [pd.read_parquet(sys.argv[1] + f'/{{s}}.parquet') for s in ('train', 'val')]
train_saliency(
    *splits, {MODEL!r}, {TRAIN!r}, sys.argv[3], head='factorised', device='cpu', snapshots=[1, 4]
)
"""


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    synthetic.write_world(root, WORLD, progress=False)
    for split in ("train", "val"):
        read_salicon_split(root / "salicon", split).to_parquet(root / f"{split}.parquet")
    return root


def _train(splits, log, out):
    code = SCRIPT.format(MODEL=MODEL, TRAIN=TRAIN)
    return subprocess.Popen([sys.executable, "-c", code, str(splits), str(log), str(out)])


def test_killed_training_resumes_from_the_last_completed_epoch(splits, tmp_path):
    out = tmp_path / "phase1"
    process = _train(splits, tmp_path / "first.log", out)
    deadline = time.time() + 120
    while not (out / "resume.pt").exists():  # epoch 0 is complete once this appears
        assert process.poll() is None and time.time() < deadline, "training ended too early"
        time.sleep(0.02)
    time.sleep(0.1)  # well inside the next epoch
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "model.pt").exists() and not (out / "history.parquet").exists()
    done = load_checkpoint(out / "resume.pt")["epoch"]
    assert done < TRAIN["epochs"] - 1
    assert _train(splits, tmp_path / "second.log", out).wait() == 0
    log = (tmp_path / "second.log").read_text()
    assert f"after epoch {done}" in log and "resuming" in log
    history = pd.read_parquet(out / "history.parquet")
    assert sorted(history["epoch"].unique()) == list(range(TRAIN["epochs"]))
    assert len(history) == 2 * TRAIN["epochs"]  # one train and one val row per epoch, no duplicates
    assert not (out / "resume.pt").exists()
    assert load_checkpoint(out / "model.pt")["meta"]["head"] == "factorised"
    # The phase-one snapshots survive the kill: epoch 1 was written before it.
    first, fourth = (load_checkpoint(out / f"epoch{e}.pt") for e in (1, 4))
    assert (first["epoch"], fourth["epoch"]) == (0, 3)
    assert any(not torch.equal(first["model"][k], fourth["model"][k]) for k in first["model"])
    assert not list((out / ".snapshots").iterdir())


def test_snapshots_must_come_before_the_last_epoch(splits, tmp_path):
    from saldissect.training.train import train_saliency

    tables = [pd.read_parquet(splits / f"{s}.parquet") for s in ("train", "val")]
    with pytest.raises(ValueError, match="snapshot epochs \\[2\\] are not between 1 and 1"):
        train_saliency(
            *tables, MODEL, {**TRAIN, "epochs": 2}, tmp_path, head="factorised", snapshots=[2]
        )


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"model": _Exploit(marker)}, handle)
    torch.save({"model": {"w": torch.zeros(1)}, "payload": _Exploit(marker)}, tmp_path / "evil2.pt")
    for candidate in (path, tmp_path / "evil2.pt"):
        with pytest.raises(ValueError, match="refused to load"):
            load_checkpoint(candidate)
    assert not marker.exists()


def test_same_config_and_seed_give_identical_training(splits, tmp_path):
    """Determinism on CPU: two runs, bit-identical weights and history."""
    from saldissect.training.train import train_saliency

    tables = [pd.read_parquet(splits / f"{s}.parquet") for s in ("train", "val")]
    config = {**TRAIN, "epochs": 2}
    runs = []
    for name in ("a", "b"):
        history = train_saliency(
            *tables, MODEL, config, tmp_path / name, head="factorised", device="cpu"
        )
        runs.append((history, load_checkpoint(tmp_path / name / "model.pt")["model"]))
    pd.testing.assert_frame_equal(
        runs[0][0].drop(columns="seconds"), runs[1][0].drop(columns="seconds")
    )
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_epoch_means_are_the_per_image_means(splits, tmp_path):
    """Scores summed on the device and read once equal the mean over images."""
    from saldissect.data.datasets import SaliencyDataset
    from saldissect.training.train import Trainer, build_model, saliency_loss

    val = pd.read_parquet(splits / "val.parquet")
    torch.manual_seed(0)
    model = build_model({**MODEL, "weights": "none"}, "factorised")
    loader = torch.utils.data.DataLoader(SaliencyDataset(val, (64, 80)), batch_size=5)
    trainer = Trainer(model, model.parameters(), TRAIN, tmp_path, torch.device("cpu"), len(loader))

    def forward(batch):
        out = model(batch["image"])
        return out["saliency"], out["prob"]

    means = trainer.run_epoch(loader, forward, False, "val")
    with torch.no_grad():
        whole = next(iter(torch.utils.data.DataLoader(loader.dataset, batch_size=len(val))))
        saliency = forward(whole)[0]
        _, scores = saliency_loss(saliency, whole["map"].float(), whole["fixations"].float())
        # the loss is a batch mean: the epoch's is the image-weighted mean of the batches'
        losses = [
            saliency_loss(
                saliency[i : i + 5],
                whole["map"][i : i + 5].float(),
                whole["fixations"][i : i + 5].float(),
            )[0]
            * len(saliency[i : i + 5])
            for i in range(0, len(val), 5)
        ]
    assert len(loader) == 4  # 16 images in batches of 5: the last batch is short
    for key in ("cc", "nss", "kld", "sim"):
        assert means[key] == pytest.approx(float(scores[key].mean()), rel=1e-5)
    assert means["loss"] == pytest.approx(float(sum(losses)) / len(val), rel=1e-5)
