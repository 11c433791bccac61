"""Bad inputs: every problem reported, one line each, before any training."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.io
from worlds import world

from saldissect.data import synthetic
from saldissect.data.inputs import InputError, index_salicon_split, index_visual_genome
from saldissect.data.stages import prepare_data

WORLD = world(
    n_train=9,
    n_val=3,
    n_probe=4,
    height=48,
    width=64,
    objects_per_image=[1, 2],
    object_size=[0.3, 0.4],
    observers=2,
    fixations_per_observer=3,
    weights={"face": 1.0, "bus": 0.5, "sky": -1.0, "field": 0.0, "red": 0.3},
)
VOCABULARY = {"min_object_count": 1, "min_attribute_count": 1, "keep_coco": True}


@pytest.fixture
def world(tmp_path):
    synthetic.write_world(tmp_path, WORLD, progress=False)
    return tmp_path


def name(split, i):
    return f"synthetic_{split}_{i:06d}"


def break_salicon(root):
    """One broken sample per kind of problem; returns the expected (file suffix, reason) pairs."""
    s = root / "salicon"
    (s / "images/train" / f"{name('train', 0)}.jpg").unlink()  # missing image
    jpg = s / "images/train" / f"{name('train', 1)}.jpg"
    jpg.write_bytes(jpg.read_bytes()[:300])  # truncated image
    (s / "maps/train" / f"{name('train', 2)}.png").unlink()  # missing map
    import cv2

    cv2.imwrite(str(s / "maps/train" / f"{name('train', 3)}.png"), np.zeros((10, 10), np.uint8))
    cv2.imwrite(str(s / "maps/train" / f"{name('train', 4)}.png"), np.zeros((48, 64), np.uint8))
    gaze = np.zeros((1, 1), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")])
    gaze[0, 0]["fixations"] = np.zeros((0, 2))
    gaze[0, 0]["location"], gaze[0, 0]["timestamp"] = np.zeros((0, 2)), np.zeros((0, 1))
    scipy.io.savemat(
        s / "fixations/train" / f"{name('train', 5)}.mat",
        {"image": "x", "resolution": np.array([[48, 64]]), "gaze": gaze},
    )
    gaze[0, 0]["fixations"] = np.array([[1.0, 1.0], [500.0, 20.0]])
    scipy.io.savemat(
        s / "fixations/val" / f"{name('val', 0)}.mat",
        {"image": "x", "resolution": np.array([[48, 64]]), "gaze": gaze},
    )
    return [
        (f"{name('train', 0)}.jpg", "missing image"),
        (f"{name('train', 1)}.jpg", "unreadable or truncated image"),
        (f"{name('train', 2)}.png", "map missing"),
        (f"{name('train', 3)}.png", "map is 10x10 but its image is 64x48"),
        (f"{name('train', 4)}.png", "all-zero map"),
        (f"{name('train', 5)}.mat", "no fixations"),
        (f"{name('val', 0)}.mat", "1 of 2 fixations outside the 64x48 image"),
    ]


def break_visual_genome(root):
    vg = root / "visual_genome"
    attributes = json.loads((vg / "attributes.json").read_text())
    attributes[0]["attributes"][0]["w"] = -5  # negative size
    attributes[1]["attributes"][0]["x"] = 500  # outside the image
    (vg / "attributes.json").write_text(json.dumps(attributes))
    (vg / "images/3.jpg").unlink()  # referenced but absent
    return [
        ("attributes.json", "box of negative or zero size"),
        ("attributes.json", "outside the 64x48 image"),
        ("3.jpg", "image 3 of the scene graph is missing"),
    ]


def run_prepare(root, tmp_path, on_bad_sample):
    out = {
        k: str(tmp_path / "out" / f"{k}.parquet")
        for k in ("train", "val", "probe", "concepts", "val_concepts", "rejects")
    }
    paths = {"salicon": str(root / "salicon"), "probe": str(root / "visual_genome")}
    prepare_data({}, out, _params(paths, batch_size=1, on_bad_sample=on_bad_sample))
    return out


def _params(paths: dict, *, batch_size: int, on_bad_sample: str) -> dict:
    """Rule prepare_data's params for a dataset at ``paths``."""
    return {
        "dataset": {},
        "paths": paths,
        "vocabulary": VOCABULARY,
        "seed": 0,
        "batch_size": batch_size,
        "on_bad_sample": on_bad_sample,
    }


def test_every_problem_is_reported_one_line_each_and_nothing_written(world, tmp_path):
    expected = break_salicon(world) + break_visual_genome(world)
    with pytest.raises(InputError) as error:
        run_prepare(world, tmp_path, "error")
    lines = str(error.value).splitlines()[1:]
    assert len(lines) == len(expected)
    for suffix, reason in expected:
        assert any(suffix in line and reason in line for line in lines), (suffix, reason)
    assert "on_bad_sample: skip" in str(error.value)
    assert not (tmp_path / "out").exists()  # no partial artifact


def test_skip_mode_leaves_bad_samples_out_and_lists_them(world, tmp_path):
    expected = break_salicon(world) + break_visual_genome(world)
    out = run_prepare(world, tmp_path, "skip")
    rejects = pd.read_parquet(out["rejects"])
    assert len(rejects) == len(expected)
    train = pd.read_parquet(out["train"])
    assert len(train) == WORLD["n_train"] - 6  # six broken training samples skipped
    assert 3 not in set(pd.read_parquet(out["probe"])["image_id"])


def test_scene_graph_that_is_not_json_or_lacks_keys(world):
    vg = world / "visual_genome"
    (vg / "attributes.json").write_text("{not json")
    _, _, _, fatal = index_visual_genome(vg)
    assert fatal and "not valid JSON" in fatal[0][1] and fatal[0][0].endswith("attributes.json")
    (vg / "attributes.json").write_text(json.dumps([{"image_id": 1}]))
    _, _, problems, _ = index_visual_genome(vg)
    assert any("lacks image_id or attributes" in reason for _, reason in problems)


def test_empty_split_and_too_few_images_stop_the_run_even_when_skipping(world, tmp_path):
    for image in (world / "salicon/images/val").iterdir():
        image.unlink()
    _, _, fatal = index_salicon_split(world / "salicon", "val")
    assert fatal and "empty split" in fatal[0][1]
    with pytest.raises(InputError, match="empty split"):
        run_prepare(world, tmp_path, "skip")
    synthetic.write_world(world, WORLD, progress=False)  # restore
    out = {
        k: str(tmp_path / "o" / f"{k}.parquet")
        for k in ("train", "val", "probe", "concepts", "val_concepts", "rejects")
    }
    paths = {"salicon": str(world / "salicon"), "probe": str(world / "visual_genome")}
    with pytest.raises(InputError, match="fewer than a batch of 16"):
        prepare_data({}, out, _params(paths, batch_size=16, on_bad_sample="skip"))
