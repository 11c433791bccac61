"""Readers of the real layouts: SALICON fixations, Visual Genome and GQA scene graphs."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import scipy.io

from saldissect.data.datasets import load_fixations
from saldissect.data.inputs import InputError, index_visual_genome, read_visual_genome
from saldissect.data.vocabulary import COCO_CATEGORIES, keep_mask, object_concept


# ------------------------------------------------------------------- SALICON
def _gaze(observers):
    """A MATLAB struct array like the SALICON 2017 release: one element per observer."""
    gaze = np.zeros(
        (len(observers), 1), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")]
    )
    for i, points in enumerate(observers):
        gaze[i, 0]["fixations"] = np.asarray(points, np.float64)
        gaze[i, 0]["location"] = np.asarray(points, np.float64)
        gaze[i, 0]["timestamp"] = np.arange(len(points), dtype=np.float64)[:, None]
    return gaze


def test_salicon_gaze_struct_is_one_based_x_y(tmp_path):
    path = tmp_path / "COCO_train2014_000000000009.mat"
    # observer 1 fixates the top-left pixel and (x=10, y=3); observer 2 the bottom-right
    observers = [[[1, 1], [10, 3]], [[64, 48]]]
    scipy.io.savemat(
        path, {"image": "x", "resolution": np.array([[48, 64]]), "gaze": _gaze(observers)}
    )
    points = load_fixations(path, 48, 64)
    assert sorted(map(tuple, points)) == [(0, 0), (2, 9), (47, 63)]  # (row, col), 0-based


def test_salicon_gaze_is_rescaled_to_the_image(tmp_path):
    path = tmp_path / "a.mat"
    scipy.io.savemat(
        path, {"image": "x", "resolution": np.array([[480, 640]]), "gaze": _gaze([[[321, 241]]])}
    )
    assert load_fixations(path, 48, 64).tolist() == [[24, 32]]


def test_fixation_pts_mat_and_binary_png(tmp_path):
    binary = np.zeros((48, 64), np.uint8)
    binary[5, 7] = binary[40, 60] = 1
    scipy.io.savemat(tmp_path / "a.mat", {"fixationPts": binary})
    cv2.imwrite(str(tmp_path / "a.png"), binary * 255)
    for path in (tmp_path / "a.mat", tmp_path / "a.png"):
        assert sorted(map(tuple, load_fixations(path, 48, 64))) == [(5, 7), (40, 60)]


def test_mat_without_fixations_is_named(tmp_path):
    path = tmp_path / "broken.mat"
    scipy.io.savemat(path, {"image": "x"})
    with pytest.raises(ValueError, match="broken.mat"):
        load_fixations(path, 48, 64)


# ---------------------------------------------------------------- vocabulary
@pytest.mark.parametrize(
    ("name", "concept"),
    [
        ("Buses", "bus"),
        ("men", "man"),
        ("Tennis  Balls", "tennis ball"),
        ("traffic lights", "traffic light"),
        ("leaves", "leaf"),
        ("t-shirts", "t-shirt"),
        ("glasses", "glasses"),
        ("jeans", "jeans"),
        ("sky", "sky"),
        ("grass", "grass"),
    ],
)
def test_object_names_are_singular_lower_case_and_kept_whole(name, concept):
    assert object_concept(name) == concept


def test_coco_categories_are_kept_however_rare_others_need_the_cutoff():
    assert len(COCO_CATEGORIES) == 80 and "traffic light" in COCO_CATEGORIES
    names = ["giraffe", "lamp", "lamp", "wooden", "wooden", "wooden", "red"]
    kinds = ["object", "object", "object", "attribute", "attribute", "attribute", "attribute"]
    kept = keep_mask(names, kinds, min_object_count=3, min_attribute_count=3)
    assert kept.tolist() == [True, False, False, True, True, True, False]
    kept = keep_mask(names, kinds, min_object_count=3, min_attribute_count=3, keep_coco=False)
    assert not kept[0]


# ------------------------------------------------------- scene-graph readers
SIZES = {1: (60, 80), 2: (40, 50)}
GRAPHS = {
    1: [
        {
            "object_id": 11,
            "x": 0,
            "y": 0,
            "w": 40,
            "h": 30,
            "names": ["Giraffes"],
            "attributes": ["Tall", "spotted"],
        },
        {
            "object_id": 12,
            "x": 40,
            "y": 30,
            "w": 40,
            "h": 30,
            "names": ["tennis balls"],
            "attributes": [],
        },
    ],
    2: [{"object_id": 21, "x": 5, "y": 5, "w": 10, "h": 10, "names": ["giraffe"]}],
}


def _images(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, (h, w) in SIZES.items():
        cv2.imwrite(str(folder / f"{image_id}.jpg"), np.full((h, w, 3), 128, np.uint8))


def write_visual_genome(root):
    root.mkdir(parents=True, exist_ok=True)
    image_data = [
        {"image_id": i, "width": w, "height": h, "url": "", "coco_id": None, "flickr_id": None}
        for i, (h, w) in SIZES.items()
    ]
    (root / "image_data.json").write_text(json.dumps(image_data))
    attributes = [{"image_id": i, "attributes": objects} for i, objects in GRAPHS.items()]
    (root / "attributes.json").write_text(json.dumps(attributes))
    objects = [
        {
            "image_id": i,
            "objects": [{k: v for k, v in o.items() if k != "attributes"} for o in objs],
        }
        for i, objs in GRAPHS.items()
    ]
    (root / "objects.json").write_text(json.dumps(objects))
    _images(root / "images")


def write_gqa(root):
    root.mkdir(parents=True, exist_ok=True)
    graphs = {
        str(i): {
            "width": SIZES[i][1],
            "height": SIZES[i][0],
            "objects": {
                str(o["object_id"]): {
                    "name": o["names"][0],
                    "x": o["x"],
                    "y": o["y"],
                    "w": o["w"],
                    "h": o["h"],
                    "attributes": o.get("attributes", []),
                    "relations": [],
                }
                for o in objects
            },
        }
        for i, objects in GRAPHS.items()
    }
    (root / "train_sceneGraphs.json").write_text(json.dumps(graphs))
    _images(root / "images")


EXPECTED = {
    ("giraffe", "object", 1),
    ("tall", "attribute", 1),
    ("spotted", "attribute", 1),
    ("tennis ball", "object", 1),
    ("giraffe", "object", 2),
}


@pytest.mark.parametrize(
    ("fmt", "writer"), [("visual_genome", write_visual_genome), ("gqa", write_gqa)]
)
def test_visual_genome_and_gqa_give_the_same_concepts(tmp_path, fmt, writer):
    writer(tmp_path / fmt)
    probe, concepts = read_visual_genome(tmp_path / fmt, scene_graphs=fmt)
    assert sorted(map(str, probe["image_id"])) == ["1", "2"]
    assert dict(zip(probe["image_id"].astype(str), probe["height"], strict=True)) == {
        "1": 60,
        "2": 40,
    }
    found = {
        (c, k, int(i))
        for i, c, k in zip(concepts["image_id"], concepts["concept"], concepts["kind"], strict=True)
    }
    assert found == EXPECTED
    tall = concepts[concepts["concept"] == "tall"].iloc[0]
    assert (tall.x, tall.y, tall.w, tall.h) == (0, 0, 40, 30)  # an attribute has its object's box


def test_frequency_cutoffs_apply_to_scene_graphs(tmp_path):
    write_gqa(tmp_path)
    _, concepts = read_visual_genome(
        tmp_path, scene_graphs="gqa", min_object_count=2, min_attribute_count=2, keep_coco=False
    )
    assert set(concepts["concept"]) == {"giraffe"}  # seen twice; the rest once


def test_probe_images_may_live_elsewhere(tmp_path):
    write_visual_genome(tmp_path / "vg")
    (tmp_path / "vg/images").rename(tmp_path / "jpgs")
    with pytest.raises(InputError, match="1.jpg: image 1 of the scene graph is missing"):
        read_visual_genome(tmp_path / "vg")
    probe, _ = read_visual_genome(tmp_path / "vg", images=tmp_path / "jpgs")
    assert len(probe) == 2


def test_malformed_gqa_files_are_named(tmp_path):
    write_gqa(tmp_path)
    path = tmp_path / "train_sceneGraphs.json"
    graphs = json.loads(path.read_text())
    del graphs["2"]["width"]
    graphs["1"]["objects"]["11"]["w"] = -3
    path.write_text(json.dumps(graphs))
    _, _, problems, fatal = index_visual_genome(tmp_path, scene_graphs="gqa")
    assert not fatal
    reasons = {reason for file, reason in problems if file.endswith("train_sceneGraphs.json")}
    assert "image 2 lacks width, height or objects" in reasons
    assert any("box of negative or zero size" in r and "image 1 object 11" in r for r in reasons)
    path.write_text("{not json")
    _, _, _, fatal = index_visual_genome(tmp_path, scene_graphs="gqa")
    assert fatal[0][0].endswith("train_sceneGraphs.json") and "not valid JSON" in fatal[0][1]
    path.unlink()
    _, _, _, fatal = index_visual_genome(tmp_path, scene_graphs="gqa")
    assert "no *sceneGraphs.json" in fatal[0][1]


def test_validation_concepts_link_coco_images_by_number_and_rescale_boxes(tmp_path):
    from saldissect.data.inputs import index_val_concepts

    # VG image 7 is COCO 42 at half the size of the SALICON copy; VG image 8 is
    # COCO 43, not a validation image; validation image 44 has no scene graph.
    (tmp_path / "image_data.json").write_text(
        json.dumps(
            [
                {"image_id": 7, "width": 320, "height": 240, "coco_id": 42},
                {"image_id": 8, "width": 320, "height": 240, "coco_id": 43},
                {"image_id": 9, "width": 320, "height": 240, "coco_id": None},
            ]
        )
    )
    box = {"object_id": 1, "x": 10, "y": 20, "w": 30, "h": 40}
    (tmp_path / "attributes.json").write_text(
        json.dumps(
            [
                {"image_id": i, "attributes": [{**box, "names": ["Faces"], "attributes": ["red"]}]}
                for i in (7, 8, 9)
            ]
        )
    )
    val = pd.DataFrame(
        {
            "image_id": ["COCO_val2014_000000000042", "COCO_val2014_000000000044"],
            "height": [480, 480],
            "width": [640, 640],
        }
    )
    concepts, problems = index_val_concepts(tmp_path, val)
    assert problems == []
    assert concepts.to_dict("records") == [
        {
            "image_id": "COCO_val2014_000000000042",
            "concept": c,
            "kind": k,
            "x": 20.0,
            "y": 40.0,
            "w": 60.0,
            "h": 80.0,
        }
        for c, k in (("face", "object"), ("red", "attribute"))
    ]
