"""Stages that stream: P of a frozen phase one, evaluation, and what a job asks for.

Every way P reaches phase two (kept in memory, recomputed each step, read from
the float16 cache) trains the same model; evaluation batch by batch gives the
scores of the metrics applied image by image; memory requests do not grow
with the number of images and do grow with the attempt.
"""

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from test_training import MODEL, TRAIN, WORLD

from saldissect.analysis.evaluation import NegativePool, evaluate
from saldissect.core import metrics
from saldissect.core.io import save_checkpoint
from saldissect.data import synthetic
from saldissect.data.datasets import fixation_map, load_fixations, read_saliency_map
from saldissect.data.inputs import read_salicon_split
from saldissect.training import resources
from saldissect.training.train import (
    FrozenInputs,
    ProbCache,
    build_model,
    frozen_mode,
    train_phase2,
    write_prob_cache,
)

SIZE = tuple(MODEL["input_size"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    synthetic.write_world(root, {**WORLD, "n_train": 24, "n_val": 12}, progress=False)
    train = read_salicon_split(root / "salicon", "train")
    val = read_salicon_split(root / "salicon", "val")
    torch.manual_seed(0)
    model = build_model(MODEL, "factorised")
    phase1 = root / "phase1.pt"
    save_checkpoint({"model": model.state_dict(), "meta": {}}, phase1)
    return root, train, val, model, phase1


def test_auto_keeps_p_in_memory_only_when_it_fits():
    grid = (60, 80)
    assert frozen_mode({"frozen_maps": "auto", "cache_mb": 1024}, 100, 512, grid) == "memory"
    # the paper's 15,000 images x 512 bases x 60 x 80 never fit
    assert frozen_mode({"frozen_maps": "auto", "cache_mb": 1024}, 15000, 512, grid) == "recompute"
    assert frozen_mode({"frozen_maps": "disk"}, 10, 8, grid) == "disk"
    with pytest.raises(ValueError, match="frozen_maps"):
        frozen_mode({"frozen_maps": "ram"}, 10, 8, grid)


def test_the_float16_cache_holds_each_images_p_in_row_order(world, tmp_path):
    _, train, _, model, _ = world
    path = tmp_path / "train.npy"
    shape = write_prob_cache(model, train, SIZE, path, batch_size=5, threads=1, device="cpu")
    cached = np.load(path)  # a standard .npy file
    assert cached.shape == shape and cached.dtype == np.float16
    dataset = ProbCache(path, train, SIZE)
    with torch.no_grad():
        from saldissect.data.datasets import SaliencyDataset

        sample = SaliencyDataset(train, SIZE)[7]
        expected = model.eval()(sample["image"][None])["prob"][0]
    item = dataset[7]
    torch.testing.assert_close(item["prob"].float(), expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(item["map"], sample["map"])
    assert torch.equal(item["fixations"], sample["fixations"])
    with pytest.raises(ValueError, match="stale cache"):
        ProbCache(path, train.iloc[:5], SIZE)


@pytest.mark.parametrize("mode", ["recompute", "disk"])
def test_every_way_of_feeding_p_trains_the_same_phase_two(world, tmp_path, mode):
    _, train, val, model, phase1 = world
    cfg = {**TRAIN, "epochs": 2, "frozen_maps": "memory"}
    _, reference = train_phase2(train, val, MODEL, cfg, phase1, tmp_path / "memory", device="cpu")
    cache = None
    if mode == "disk":
        cache = {}
        for split, table in (("train", train), ("val", val)):
            cache[split] = str(tmp_path / f"{split}.npy")
            write_prob_cache(
                model, table, SIZE, cache[split], batch_size=5, threads=1, device="cpu"
            )
    history, weights = train_phase2(
        train,
        val,
        MODEL,
        {**cfg, "frozen_maps": mode},
        phase1,
        tmp_path / mode,
        device="cpu",
        cache=cache,
    )
    # recomputing is exact; float16 P changes the weights by about its precision
    tolerance = 1e-5 if mode == "recompute" else 2e-3
    np.testing.assert_allclose(weights["weight"], reference["weight"], atol=tolerance)


def test_recomputing_p_leaves_the_frozen_batch_norms_alone(world):
    _, train, val, _, phase1 = world
    model = build_model(MODEL, "reformulated")
    model.load_state_dict(torch.load(phase1, weights_only=True)["model"])
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    cfg = {**TRAIN, "epochs": 1, "frozen_maps": "recompute"}
    inputs = FrozenInputs(model, train, val, SIZE, cfg, 1, torch.device("cpu"))
    model.train()
    model.features.eval()
    for batch in inputs.train_loader:
        inputs.prob(batch)
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)


def _evaluate(model, val, *, batch_size, **options):
    return evaluate(
        {"phase1": model},
        val,
        SIZE,
        batch_size=batch_size,
        device=torch.device("cpu"),
        center_bias_sigma=None,
        sauc_others=3,
        sauc_pool=6,
        seed=0,
        **options,
    )


def test_streamed_evaluation_scores_each_image_as_the_metrics_do(world):
    _, _, val, model, _ = world
    means, images = _evaluate(model, val, batch_size=5)
    assert list(means.columns) == ["variant", "metric", "value", "n_images", "averaging"]
    assert set(means["averaging"]) == {"image"} and "ig" in set(means["metric"])
    assert set(images["image_id"]) == set(val["image_id"])
    # image 4 by hand: its prediction, map, fixations and the pool's negatives
    pool = NegativePool(val, size=6, others=3, seed=0)
    row = val.iloc[4]
    height, width = int(row.height), int(row.width)
    from saldissect.data.datasets import load_image

    with torch.no_grad():
        pred = model.eval()(torch.from_numpy(load_image(row.image_path, SIZE))[None])
    import cv2

    pred = cv2.resize(pred["saliency"][0, 0].numpy(), (width, height))
    points = load_fixations(row.fixation_path, height, width)
    expected = metrics.score_image(
        pred,
        read_saliency_map(row.map_path),
        fixation_map(points, height, width),
        pool.negatives(4, height, width),
        points=points,
        baseline=pool.baseline(4, height, width, 0.05),
    )
    assert set(expected) == set(metrics.METRICS)
    got = images[images["image_id"] == row.image_id].set_index("metric")["value"]
    for metric, value in expected.items():
        assert got[metric] == pytest.approx(value, abs=1e-5)
    # the table's means are the per-image means, whatever the batch size
    again, _ = _evaluate(model, val, batch_size=7)
    pd.testing.assert_frame_equal(means, again, atol=1e-6)
    per_metric = images.groupby("metric")["value"].mean()
    for r in means.itertuples():
        assert r.value == pytest.approx(per_metric[r.metric])


def test_per_fixation_averaging_weights_each_image_by_its_fixations(world, tmp_path):
    """evaluation.average: fixation (pysaliency's average='fixation'): the fixation
    metrics' means weight each image by its fixations; the map metrics do not move."""
    _, _, val, model, _ = world
    val = val.copy()
    for i, row in enumerate(val.itertuples()):  # 2, 4, 6... of each image's fixations
        points = load_fixations(row.fixation_path, row.height, row.width)[: 2 * (i % 5 + 1)]
        path = tmp_path / f"{row.image_id}.png"
        cv2.imwrite(str(path), 255 * fixation_map(points, row.height, row.width))
        val.loc[val["image_id"] == row.image_id, "fixation_path"] = str(path)
    by_image, images = _evaluate(model, val, batch_size=5)
    by_fixation, again = _evaluate(model, val, batch_size=5, average="fixation")
    pd.testing.assert_frame_equal(images, again)  # the same per-image scores
    counts = {
        r.image_id: len(load_fixations(r.fixation_path, r.height, r.width))
        for r in val.itertuples()
    }
    for _, frame in images.groupby(["variant", "metric"]):
        assert dict(zip(frame["image_id"], frame["n_fixations"], strict=True)) == counts
    assert len(set(counts.values())) > 1  # else the two averages could not differ
    for row in by_fixation.itertuples():
        scores = images[(images["metric"] == row.metric)]
        if row.metric in metrics.FIXATION_METRICS:
            assert row.averaging == "fixation"
            expected = np.average(scores["value"], weights=scores["n_fixations"])
        else:
            assert row.averaging == "image"
            expected = scores["value"].mean()
        assert row.value == pytest.approx(expected)
    moved = by_fixation.set_index("metric")["value"] - by_image.set_index("metric")["value"]
    assert (moved[list(metrics.FIXATION_METRICS)].abs() > 1e-9).any()
    assert (moved[["cc", "sim", "kld"]].abs() < 1e-12).all()


def test_the_ig_baseline_leaves_the_scored_images_fixations_out(world):
    _, _, val, _, _ = world
    pool = NegativePool(val, size=len(val), others=3, seed=0)
    for index in (0, 3):
        row = val.iloc[index]
        own = load_fixations(row.fixation_path, 64, 80)
        others = [
            load_fixations(val.iloc[j].fixation_path, 64, 80) for j in range(len(val)) if j != index
        ]
        counts = np.zeros((64, 80))
        np.add.at(counts, tuple(np.concatenate(others).T), 1.0)
        expected = cv2.GaussianBlur(counts, (0, 0), 0.05 * 80, sigmaY=0.05 * 64)
        np.testing.assert_allclose(pool.baseline(index, 64, 80, 0.05), expected, atol=1e-9)
        assert len(own) and not np.allclose(expected, pool.baseline(-1, 64, 80, 0.05))


def test_negatives_never_come_from_the_scored_image(world):
    _, _, val, _, _ = world
    pool = NegativePool(val, size=4, others=3, seed=1)
    for index in pool.members:
        others = pool.negatives(int(index), 64, 80)
        own = fixation_map(load_fixations(val.iloc[int(index)].fixation_path, 64, 80), 64, 80)
        assert others.sum() > 0
        assert len(pool.members) == 4
        # three of the other three pool members: never its own points alone
        assert not np.array_equal(others > 0, own > 0)


def test_memory_requests_follow_the_model_and_attempt_not_the_image_count():
    small = resources.estimate("train_phase1", MODEL, batch_size=8, n_images=100, epochs=2)
    many = resources.estimate("train_phase1", MODEL, batch_size=8, n_images=100_000, epochs=2)
    assert small["mem_mb"] == many["mem_mb"]
    assert many["runtime"] > small["runtime"]
    retry = resources.estimate(
        "train_phase1", MODEL, batch_size=8, n_images=100, epochs=2, attempt=2
    )
    assert abs(retry["mem_mb"] - 2 * small["mem_mb"]) <= 1  # whole MB and minutes
    assert abs(retry["runtime"] - 2 * small["runtime"]) <= 1
    bigger_batch = resources.estimate("train_phase1", MODEL, batch_size=64, n_images=100)
    assert bigger_batch["mem_mb"] > small["mem_mb"]
    # the dissection's bootstrap state: R x N x K float32 (200 x 512 x 2000 = 819 MB)
    paper = {"arch": "dinet", "input_size": [480, 640]}
    without = resources.estimate("dissect_bases", paper, batch_size=16, bootstrap=0)
    with_state = resources.estimate(
        "dissect_bases", paper, batch_size=16, bootstrap=200, n_concepts=2000
    )
    assert with_state["device_mb"] - without["device_mb"] >= 4 * 200 * 512 * 2000 / 2**20
