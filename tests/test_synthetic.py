import numpy as np
import pandas as pd
import pytest
from worlds import world

from saldissect.data import synthetic
from saldissect.data.datasets import fixation_map, load_fixations
from saldissect.data.inputs import read_salicon_split, read_visual_genome

CFG = world(
    seed=3,
    n_train=4,
    n_val=2,
    n_probe=3,
    objects_per_image=[2, 4],
    object_size=[0.25, 0.4],
    observers=5,
    fixations_per_observer=6,
    weights={"face": 1.0, "bus": 0.3, "sky": -0.5, "field": 0.2, "red": 0.5},
)


def test_scenes_are_deterministic_per_seed():
    a = synthetic.draw_scene(synthetic._rng(1, "train", 0), CFG["weights"], CFG)
    b = synthetic.draw_scene(synthetic._rng(1, "train", 0), CFG["weights"], CFG)
    c = synthetic.draw_scene(synthetic._rng(2, "train", 0), CFG["weights"], CFG)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.value, b.value)
    assert a.objects == b.objects
    assert not np.array_equal(a.image, c.image)


def test_world_is_deterministic_on_disk(tmp_path):
    synthetic.write_world(tmp_path / "a", CFG, progress=False)
    synthetic.write_world(tmp_path / "b", CFG, progress=False)
    for sub in ("salicon/maps/train/synthetic_train_000003.png", "visual_genome/objects.json"):
        assert (tmp_path / "a" / sub).read_bytes() == (tmp_path / "b" / sub).read_bytes()


def test_world_reads_back_through_the_real_readers(tmp_path):
    synthetic.write_world(tmp_path, CFG, progress=False)
    train = read_salicon_split(tmp_path / "salicon", "train")
    assert len(train) == 4 and set(train["height"]) == {64} and set(train["width"]) == {80}
    points = load_fixations(train["fixation_path"][0], 64, 80)
    assert len(points) == 5 * 6  # every sampled fixation, back in 0-based pixels
    assert points[:, 0].max() < 64 and points[:, 1].max() < 80
    probe, concepts = read_visual_genome(tmp_path / "visual_genome")
    assert len(probe) == 3
    assert {"object", "attribute"} >= set(concepts["kind"])
    assert set(concepts["concept"]) <= set(CFG["weights"])  # only planted concepts are drawn
    assert "red" in set(concepts.loc[concepts["kind"] == "attribute", "concept"])
    planted = pd.read_parquet(tmp_path / "planted.parquet")
    assert planted.set_index("concept")["weight"].to_dict() == CFG["weights"]


def test_a_scene_drawn_again_is_the_written_one(tmp_path):
    """`synthetic.scene` redraws any image of a written world: the same pixels (its
    JPEG is the written file, byte for byte) and, for the probe set, the boxes its
    scene graphs hold."""
    import cv2

    synthetic.write_world(tmp_path, CFG, progress=False)
    for split, index, path in (
        ("train", 3, "salicon/images/train/synthetic_train_000003.jpg"),
        ("val", 1, "salicon/images/val/synthetic_val_000001.jpg"),
        ("probe", 2, "visual_genome/images/3.jpg"),
    ):
        written = (tmp_path / path).read_bytes()
        for drawn_index, same in ((index, True), (index - 1, False)):
            image = synthetic.scene(CFG, split, drawn_index).image
            _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            assert (encoded.tobytes() == written) is same, (split, drawn_index)
    _, concepts = read_visual_genome(tmp_path / "visual_genome")
    boxes = concepts[(concepts["image_id"] == 3) & (concepts["kind"] == "object")]
    scene = synthetic.scene(CFG, "probe", 2)
    drawn = sorted((o["name"], tuple(int(v) for v in o["box"])) for o in scene.objects)
    written = zip(boxes["concept"], boxes[["x", "y", "w", "h"]].to_numpy(), strict=True)
    assert sorted((name, tuple(int(v) for v in box)) for name, box in written) == drawn


def test_fixations_follow_the_planted_weights():
    """Positive concepts draw more fixations per pixel than negative ones."""
    weights = {"face": 1.5, "sky": -1.5}
    cfg = {**CFG, "weights": weights}
    hits = {"pos": 0.0, "neg": 0.0}
    area = {"pos": 0.0, "neg": 0.0}
    for i in range(20):
        rng = synthetic._rng(0, "check", i)
        scene = synthetic.draw_scene(rng, weights, cfg)
        points = synthetic.sample_fixations(synthetic.fixation_density(scene.value, cfg), 500, rng)
        fixated = fixation_map(points, 64, 80) > 0
        for key, mask in (("pos", scene.value > 1), ("neg", scene.value < -1)):
            hits[key] += (fixated & mask).sum()
            area[key] += mask.sum()
    assert hits["pos"] / area["pos"] > 3 * hits["neg"] / area["neg"]


def test_placement_is_not_tied_to_the_centre():
    """Every background appears both near the centre and near the border."""
    centre, border = set(), set()
    for i in range(60):
        everything = dict.fromkeys(synthetic.CONCEPTS, 0.0)
        scene = synthetic.draw_scene(synthetic._rng(0, "placement", i), everything, CFG)
        for obj in scene.objects:
            x, y, w, h = obj["box"]
            cx, cy = (x + w / 2) / 80, (y + h / 2) / 64
            (centre if abs(cx - 0.5) < 0.2 and abs(cy - 0.5) < 0.2 else border).add(obj["name"])
    backgrounds = {c.name for c in synthetic.BACKGROUNDS}
    assert backgrounds <= centre and backgrounds <= border


def test_unknown_planted_concept_is_named():
    with pytest.raises(ValueError, match="unicorn"):
        synthetic.validate_weights({"unicorn": 1.0, "sky": 0.0})
    with pytest.raises(ValueError, match="background"):
        synthetic.validate_weights({"face": 1.0})


def test_controls_with_other_shuffle_seeds_pair_images_with_other_maps(tmp_path):
    """Each shuffled control draws its own permutation of maps and fixations."""
    from saldissect.data.stages import prepare_data

    world = tmp_path / "world"
    synthetic.write_world(world, {**CFG, "n_train": 12}, progress=False)
    paths = {
        "salicon": str(world / "salicon"),
        "probe": str(world / "visual_genome"),
        "scene_graphs": "visual_genome",
        "probe_images": None,
        "val_scene_graphs": str(world / "visual_genome_val"),
    }
    vocabulary = {"min_object_count": 1, "min_attribute_count": 1, "keep_coco": True}
    tables = {}
    for name, shuffle in (
        ("plain", {}),
        ("first", {"shuffle_maps": True}),
        ("other", {"shuffle_maps": True, "shuffle_seed": 7}),
    ):
        kinds = ("train", "val", "probe", "concepts", "val_concepts", "rejects")
        out = {kind: str(tmp_path / name / f"{kind}.parquet") for kind in kinds}
        params = {
            "dataset": {"source": "synthetic", **shuffle},
            "paths": paths,
            "vocabulary": vocabulary,
            "seed": 0,
            "batch_size": 1,
            "on_bad_sample": "error",
        }
        prepare_data({}, out, params)
        tables[name] = pd.read_parquet(out["train"])
    plain, first, other = tables["plain"], tables["first"], tables["other"]
    for control in (first, other):
        assert list(control["image_path"]) == list(plain["image_path"])
        assert sorted(control["map_path"]) == sorted(plain["map_path"])
        # maps and fixations move together
        assert all(
            m.split("/")[-1][:-4] == f.split("/")[-1][:-4]
            for m, f in zip(control["map_path"], control["fixation_path"], strict=True)
        )
    assert list(first["map_path"]) != list(plain["map_path"])
    assert list(other["map_path"]) != list(first["map_path"])
