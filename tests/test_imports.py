"""Datasets in other layouts written into SALICON's: pysaliency's files (written by
pysaliency itself), the MIT1003 and CAT2000 releases; then indexed and checked
by the same reader as SALICON, with nothing lost on the way."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pysaliency
import pytest
import scipy.io
import yaml
from pysaliency_data import write_pysaliency
from worlds import world

from saldissect.core.config import ConfigError, load_schema, validate_config
from saldissect.core.errors import UserError
from saldissect.data import imports, synthetic
from saldissect.data.datasets import load_fixations, read_saliency_map
from saldissect.data.inputs import index_salicon_split

ROOT = Path(__file__).resolve().parents[1]
WORLD = world(n_train=10, n_val=6)


@pytest.fixture(scope="module")
def world_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    synthetic.write_world(root, WORLD, progress=False)
    return root


@pytest.fixture(scope="module")
def pysaliency_files(world_root, tmp_path_factory):
    return write_pysaliency(world_root / "salicon", tmp_path_factory.mktemp("pysaliency"))


def source_points(world_root, name):
    split = "train" if "_train_" in name else "val"
    return load_fixations(world_root / f"salicon/fixations/{split}/{name}.mat", 64, 80)


def as_set(points):
    return {tuple(p) for p in np.asarray(points).tolist()}


def pysaliency_config(stimuli, fixations, **changes):
    return {
        "source": "pysaliency",
        "stimuli": str(stimuli),
        "fixations": str(fixations),
        "blur": {"sigma": 2.4, "unit": "pixels"},
        "val_fraction": 0.25,
        "split_seed": 0,
        **changes,
    }


def test_a_pysaliency_dataset_is_indexed_with_every_fixation_kept(
    world_root, pysaliency_files, tmp_path
):
    written = imports.import_dataset(pysaliency_config(*pysaliency_files), tmp_path)
    assert written == {"train": 12, "val": 4}  # 16 stimuli, a quarter held out
    names = set()
    for split, count in written.items():
        table, problems, fatal = index_salicon_split(tmp_path, split)
        assert not problems and not fatal
        assert len(table) == count
        assert (table["height"] == 64).all() and (table["width"] == 80).all()
        for row in table.itertuples():
            names.add(row.image_id)
            # the same fixated pixels (every observer's), the same image
            assert as_set(load_fixations(row.fixation_path, 64, 80)) == as_set(
                source_points(world_root, row.image_id)
            )
            came_from = "train" if "_train_" in row.image_id else "val"
            original = world_root / f"salicon/images/{came_from}/{row.image_id}.jpg"
            assert np.array_equal(cv2.imread(row.image_path), cv2.imread(str(original)))
    assert len(names) == 16  # every stimulus once, in one split


def test_the_map_is_the_fixations_blurred_by_the_stated_gaussian(pysaliency_files, tmp_path):
    imports.import_dataset(pysaliency_config(*pysaliency_files), tmp_path / "px")
    degrees = {"sigma": 0.08, "unit": "degrees", "pixels_per_degree": 30.0}
    imports.import_dataset(pysaliency_config(*pysaliency_files, blur=degrees), tmp_path / "deg")
    table, _, _ = index_salicon_split(tmp_path / "px", "train")
    for row in table.itertuples():
        points = load_fixations(row.fixation_path, 64, 80)
        counts = imports.fixation_counts(points[:, 0], points[:, 1], (64, 80))
        expected = cv2.GaussianBlur(counts, (0, 0), 2.4)
        saliency = read_saliency_map(row.map_path)
        assert np.corrcoef(saliency.ravel(), expected.ravel())[0, 1] > 0.999
        # 0.08 degrees at 30 pixels a degree is the same 2.4 pixels
        in_degrees = read_saliency_map(tmp_path / f"deg/maps/train/{row.image_id}.png")
        assert np.abs(in_degrees - saliency).max() <= 1 / 255 + 1e-6
    sharper = {"sigma": 1.0, "unit": "pixels"}
    imports.import_dataset(pysaliency_config(*pysaliency_files, blur=sharper), tmp_path / "s")
    row = table.iloc[0]
    sharp = read_saliency_map(tmp_path / f"s/maps/train/{row.image_id}.png")
    assert (sharp > 0.05).sum() < (read_saliency_map(row.map_path) > 0.05).sum()


def test_the_split_is_the_datasets_own_when_it_has_one(world_root, tmp_path):
    train = write_pysaliency(world_root / "salicon", tmp_path / "files", splits=("train",))
    val = write_pysaliency(world_root / "salicon", tmp_path / "files", splits=("val",))
    cfg = pysaliency_config(*train, val_stimuli=str(val[0]), val_fixations=str(val[1]))
    assert imports.import_dataset(cfg, tmp_path / "out") == {"train": 10, "val": 6}
    held = index_salicon_split(tmp_path / "out", "val")[0]
    assert held["image_id"].str.contains("_val_").all()
    # the same stimuli on both sides are refused
    clash = pysaliency_config(*train, val_stimuli=str(train[0]), val_fixations=str(train[1]))
    with pytest.raises(UserError, match="share images"):
        imports.import_dataset(clash, tmp_path / "clash")


def test_the_val_fraction_draw_depends_on_its_seed_only(pysaliency_files, tmp_path):
    def held(seed, folder):
        cfg = pysaliency_config(*pysaliency_files, split_seed=seed)
        imports.import_dataset(cfg, tmp_path / folder)
        return set(index_salicon_split(tmp_path / folder, "val")[0]["image_id"])

    first = held(0, "a")
    assert held(0, "b") == first
    assert any(held(seed, f"s{seed}") != first for seed in (1, 2, 3))
    with pytest.raises(UserError, match="not empty"):
        held(0, "a")  # nothing is written over


def test_stimuli_kept_inside_the_hdf5_file_are_written_as_png(world_root, tmp_path):
    paths = sorted((world_root / "salicon/images/train").glob("*.jpg"))[:4]
    pixels = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    pysaliency.Stimuli(pixels).to_hdf5(str(tmp_path / "stimuli.hdf5"))
    x, y, n = np.array([10.2, 40.7, 79.9, 3.0]), np.array([5.5, 30.1, 63.99, 0.0]), np.arange(4)
    fixations = pysaliency.Fixations.create_without_history(x, y, n, subjects=np.zeros(4))
    fixations.to_hdf5(str(tmp_path / "fixations.hdf5"))
    cfg = pysaliency_config(tmp_path / "stimuli.hdf5", tmp_path / "fixations.hdf5")
    imports.import_dataset(cfg, tmp_path / "out")
    for split in ("train", "val"):
        for row in index_salicon_split(tmp_path / "out", split)[0].itertuples():
            n = int(row.image_id.removeprefix("stimulus_"))
            assert row.image_path.endswith(".png")  # lossless: the pixels as stored
            assert np.array_equal(cv2.imread(row.image_path)[..., ::-1], pixels[n])
            # pysaliency's x_int, y_int: the pixel a fixation falls in
            assert as_set(load_fixations(row.fixation_path, 64, 80)) == {(int(y[n]), int(x[n]))}


def test_without_pysaliency_the_source_says_how_to_install_it(
    pysaliency_files, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "pysaliency", None)  # import pysaliency fails
    with pytest.raises(UserError, match=r"pip install 'saldissect\[pysaliency\]'"):
        imports.import_dataset(pysaliency_config(*pysaliency_files), tmp_path)


def test_a_file_of_the_wrong_kind_is_refused_in_one_line(pysaliency_files, tmp_path):
    stimuli, fixations = pysaliency_files
    with pytest.raises(UserError, match="not stimuli"):
        imports.import_dataset(pysaliency_config(fixations, fixations), tmp_path / "a")
    with pytest.raises(UserError, match="not fixations"):
        imports.import_dataset(pysaliency_config(stimuli, stimuli), tmp_path / "b")
    with pytest.raises(UserError, match="not found"):
        imports.import_dataset(pysaliency_config(tmp_path / "none.hdf5", fixations), tmp_path)
    degrees = {"sigma": 1.0, "unit": "degrees"}
    with pytest.raises(UserError, match="pixels_per_degree"):
        imports.import_dataset(pysaliency_config(stimuli, fixations, blur=degrees), tmp_path)


# ------------------------------------------------------ the MIT1003 and CAT2000 releases
def binary_image(points, shape=(64, 80)):
    image = np.zeros(shape, np.uint8)
    image[points[:, 0], points[:, 1]] = 255
    return image


def write_mit1003(world_root, folder):
    """The MIT1003 release's layout: JPEG stimuli, fixMap and fixPts JPEGs."""
    (folder / "ALLSTIMULI").mkdir(parents=True)
    (folder / "ALLFIXATIONMAPS").mkdir()
    for image in sorted((world_root / "salicon/images").glob("*/*.jpg")):
        split = image.parent.name
        (folder / "ALLSTIMULI" / f"{image.stem}.jpeg").write_bytes(image.read_bytes())
        saliency = cv2.imread(str(world_root / f"salicon/maps/{split}/{image.stem}.png"))
        cv2.imwrite(str(folder / "ALLFIXATIONMAPS" / f"{image.stem}_fixMap.jpg"), saliency)
        points = binary_image(source_points(world_root, image.stem))
        cv2.imwrite(str(folder / "ALLFIXATIONMAPS" / f"{image.stem}_fixPts.jpg"), points)


def write_cat2000(world_root, folder):
    """CAT2000's trainSet: categories of numbered images, fixLocs matrices."""
    train = folder / "trainSet"
    for i, image in enumerate(sorted((world_root / "salicon/images").glob("*/*.jpg"))):
        category, number = ("Action", "Indoor")[i % 2], f"{i // 2 + 1:03d}"
        for kind in ("Stimuli", "FIXATIONMAPS", "FIXATIONLOCS"):
            (train / kind / category).mkdir(parents=True, exist_ok=True)
        split = image.parent.name
        (train / "Stimuli" / category / f"{number}.jpg").write_bytes(image.read_bytes())
        saliency = cv2.imread(str(world_root / f"salicon/maps/{split}/{image.stem}.png"))
        cv2.imwrite(str(train / "FIXATIONMAPS" / category / f"{number}.jpg"), saliency)
        points = binary_image(source_points(world_root, image.stem)) > 0
        scipy.io.savemat(train / "FIXATIONLOCS" / category / f"{number}.mat", {"fixLocs": points})


@pytest.mark.parametrize("source", ["mit1003", "cat2000"])
def test_a_release_layout_is_indexed_with_its_fixated_pixels(world_root, tmp_path, source):
    (write_mit1003 if source == "mit1003" else write_cat2000)(world_root, tmp_path / "release")
    cfg = {"source": source, "folder": str(tmp_path / "release"), "val_fraction": 0.25}
    written = imports.import_dataset({**cfg, "split_seed": 0}, tmp_path / "out")
    assert written == {"train": 12, "val": 4}
    expected = (
        {p.stem: p.stem for p in (world_root / "salicon/images").glob("*/*.jpg")}
        if source == "mit1003"
        else {
            f"{('Action', 'Indoor')[i % 2]}_{i // 2 + 1:03d}": p.stem
            for i, p in enumerate(sorted((world_root / "salicon/images").glob("*/*.jpg")))
        }
    )
    seen = set()
    for split in ("train", "val"):
        table, problems, fatal = index_salicon_split(tmp_path / "out", split)
        assert not problems and not fatal and len(table) == written[split]
        for row in table.itertuples():
            seen.add(row.image_id)
            original = expected[row.image_id]
            # a JPEG-coded fixPts is read at half its range: the fixated pixels exactly
            assert as_set(load_fixations(row.fixation_path, 64, 80)) == as_set(
                source_points(world_root, original)
            )
    assert seen == set(expected)
    assert imports.source_size({**cfg, "split_seed": 0}) == written


# ------------------------------------------------------------------ the config
SCHEMA = load_schema(ROOT / "workflow/schemas/config.schema.yaml")
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())
PYSALIENCY = {
    "source": "pysaliency",
    "stimuli": "s.hdf5",
    "fixations": "f.hdf5",
    "probe": "vg",
    "blur": {"sigma": 1.0, "unit": "degrees", "pixels_per_degree": 35},
}


def problems(dataset: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        validate_config({**DEFAULT, "datasets": {"mine": dataset}}, SCHEMA)
    return str(error.value).splitlines()[1:]


def test_each_source_takes_its_own_keys():
    for dataset in (
        PYSALIENCY,
        {**PYSALIENCY, "val_stimuli": "v.hdf5", "val_fixations": "vf.hdf5"},
        {"source": "mit1003", "folder": "mit", "probe": "vg", "val_fraction": 0.1},
        {"source": "cat2000", "folder": "cat", "probe": "vg", "split_seed": 3},
    ):
        validate_config({**DEFAULT, "datasets": {"mine": dataset}}, SCHEMA)


@pytest.mark.parametrize(
    ("dataset", "line"),
    [
        ({**PYSALIENCY, "salicon": "x"}, "'datasets.mine.salicon': does not apply to source"),
        ({**PYSALIENCY, "val_stimuli": "v.hdf5"}, "'val_fixations' is a dependency"),
        ({k: v for k, v in PYSALIENCY.items() if k != "blur"}, "'blur' is a required property"),
        ({"source": "mit1003", "probe": "vg"}, "'folder' is a required property"),
        (
            {
                "source": "cat2000",
                "folder": "c",
                "probe": "vg",
                "blur": {"sigma": 1, "unit": "pixels"},
            },
            "'datasets.mine.blur': does not apply to source cat2000",
        ),
        (
            {"source": "salicon", "salicon": "s", "probe": "vg", "val_fraction": 0.2},
            "'datasets.mine.val_fraction': does not apply to source salicon",
        ),
    ],
)
def test_a_key_of_another_source_or_a_missing_one_is_named(dataset, line):
    assert any(line in found for found in problems(dataset)), problems(dataset)
