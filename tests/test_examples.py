import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from saldissect.analysis.dissection import coverage_masks, dissect, iou
from saldissect.analysis.examples import EXAMPLE_COLUMNS, collect_examples
from saldissect.data.datasets import load_image
from saldissect.report import examples as ex
from saldissect.report.examples import plot_examples
from saldissect.training.train import build_model


def _alignment(*args, **kwargs) -> pd.DataFrame:
    """`dissect`'s alignment table (it also returns bootstrap replicates)."""
    return dissect(*args, **kwargs)[0]


# ------------------------------------------------------------ a known answer
# Five 40 x 40 images on a 4 x 4 feature grid (cells of 10 x 10 pixels). Each
# image is one flat grey level; the stand-in model reads it to know which
# image it sees and returns that image's hand-made maps.
HI, LO = 0.9, 0.1
FACE = [0, 0, 20, 20]  # cells (0:2, 0:2)
BALL = [20, 20, 20, 20]  # cells (2:4, 2:4)
# probe order; ids deliberately not sorted so "probe order" differs from "id order"
IMAGES = {30: "a", 20: "b", 10: "c", 40: "d", 50: "e"}
GREY = {"a": 10, "b": 20, "c": 30, "d": 40, "e": 50}


def _cells(*cells):
    grid = np.full((4, 4), LO, np.float32)
    for r, c in cells:
        grid[r, c] = HI
    return grid


ALL = [(r, c) for r in range(4) for c in range(4)]
FACE_CELLS = [(0, 0), (0, 1), (1, 0), (1, 1)]
BALL_CELLS = [(2, 2), (2, 3), (3, 2), (3, 3)]
MAPS = {  # image -> (basis 0, basis 1)
    "a": (_cells(*ALL), _cells(*FACE_CELLS)),  # face basis 1: IoU 1
    "b": (_cells(*BALL_CELLS), _cells(*[(r, c) for r in range(2) for c in range(4)])),  # 4/8
    "c": (_cells(), _cells((0, 0), (0, 1))),  # face 2/4; word: basis 0 empty -> 0
    "d": (_cells((2, 2), (2, 3)), _cells(*FACE_CELLS)),  # ball 2/4; basis 1 fires, no face
    "e": (_cells(), _cells((0, 0), (3, 0), (3, 1), (3, 2))),  # face 1/7
}


class FixedMaps(torch.nn.Module):
    """Returns the hand-made maps of the images in the batch, found by grey level."""

    n_bases = 2

    def __init__(self):
        super().__init__()
        by_grey = {GREY[k]: torch.from_numpy(np.stack(v)) for k, v in MAPS.items()}
        self.register_buffer("table", torch.stack([by_grey[g] for g in sorted(by_grey)]))
        self.greys = sorted(by_grey)
        self.calls = 0

    def forward(self, images):
        assert images.dtype == torch.uint8 and images.shape[1:] == (3, 40, 40)
        self.calls += 1
        rows = [self.greys.index(int(g)) for g in images[:, 0, 0, 0]]
        return {"prob": self.table[rows]}


@pytest.fixture
def world(tmp_path):
    paths = {}
    for image_id, name in IMAGES.items():
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), np.full((40, 40, 3), GREY[name], np.uint8))
        paths[image_id] = str(path)
    probe = pd.DataFrame(
        {
            "image_id": list(IMAGES),
            "image_path": [paths[i] for i in IMAGES],
            "height": 40,
            "width": 40,
        }
    )
    boxes = [
        (30, "face", FACE),
        (20, "face", FACE),
        (20, "ball", BALL),
        (10, "face", FACE),
        (10, "word", FACE),
        (40, "ball", BALL),
        (50, "face", FACE),
        (50, "sky", [0, 0, 40, 10]),
        (99, "face", FACE),  # an image outside the probe set
    ]
    concepts = pd.DataFrame(
        [(i, c, "object", *b) for i, c, b in boxes],
        columns=["image_id", "concept", "kind", "x", "y", "w", "h"],
    )
    scores = {  # concept: (mean_iou basis 0, basis 1, pooled basis 0, basis 1)
        "face": (0.2, 0.6, 0.7, 0.3),
        "word": (0.3, 0.1, 0.3, 0.1),
        "ball": (0.4, 0.4, 0.1, 0.2),  # a tie: the lowest basis wins
        "sky": (0.5, 0.5, 0.5, 0.5),
    }
    alignment = pd.DataFrame(
        [(n, c, "object", s[n], s[2 + n], 0.0, 0.0, 1) for c, s in scores.items() for n in (0, 1)],
        columns=[
            "basis",
            "concept",
            "kind",
            "mean_iou",
            "pooled_iou",
            "intersection",
            "union",
            "n_images",
        ],
    )
    contributions = pd.DataFrame(
        {
            "concept": ["face", "word", "sky", "ball"],
            "category": ["social", "text", "sky", "other"],
            "contribution": [1.0, 0.5, 0.0, -0.8],
            "normalized": [1.0, 0.5, 0.0, -1.0],
            "rank": [1, 2, 0, -1],
        }
    )
    return probe, concepts, alignment, contributions


def _collect(world, model=None, **options):
    probe, concepts, alignment, contributions = world
    settings = {"min_cover": 0.5, "batch_size": 2, "device": "cpu"} | options
    return collect_examples(
        model or FixedMaps(),
        probe,
        concepts,
        torch.tensor([0.5, 0.4]),
        contributions,
        alignment,
        (40, 40),
        **settings,
    )


def test_best_basis_and_images_by_iou(world):
    table = _collect(world, n_concepts=3, n_images=3)
    assert tuple(table.columns) == EXAMPLE_COLUMNS
    assert table[["concept", "rank", "basis", "image_id"]].values.tolist() == [
        ["face", 1, 1, 30],  # IoU 1: the basis equals the box
        ["face", 1, 1, 20],  # 0.5, tied with image 10: probe order first
        ["face", 1, 1, 10],
        ["word", 2, 0, 10],
        ["ball", -1, 0, 20],
        ["ball", -1, 0, 40],
    ]
    assert table["iou"].tolist() == pytest.approx([1.0, 0.5, 0.5, 0.0, 1.0, 0.5])
    assert table["category"].tolist() == ["social"] * 3 + ["text", "other", "other"]
    assert table["threshold"].tolist() == pytest.approx([0.4, 0.4, 0.4, 0.5, 0.5, 0.5])
    assert (table["map_height"] == 4).all() and (table["map_width"] == 4).all()
    assert table["image_path"].str.endswith(".png").all()
    first = table.iloc[0]["map"]
    assert first.dtype == np.float32 and len(first) == 16
    assert np.array_equal(first, MAPS["a"][1].ravel())  # row-major, basis 1 of image a
    assert np.array_equal(table.iloc[4]["map"], MAPS["b"][0].ravel())


def test_images_without_the_concept_are_never_chosen(world):
    table = _collect(world, n_concepts=1, n_images=10)
    face = table[table["concept"] == "face"]
    # image 40 has basis 1 firing on the face cells but no face; 99 is not in the probe
    assert face["image_id"].tolist() == [30, 20, 10, 50]
    assert face["iou"].tolist() == pytest.approx([1.0, 0.5, 0.5, 1 / 7])
    assert table["concept"].tolist() == ["face"] * 4 + ["ball"] * 2  # rank 2 left out
    assert set(table["rank"]) == {1, -1}


def test_max_scan_limits_the_scan_to_the_first_probe_images(world):
    model = FixedMaps()
    table = _collect(world, model, n_concepts=1, n_images=10, max_scan=2)
    assert table[["concept", "image_id"]].values.tolist() == [
        ["face", 30],
        ["face", 20],
        ["ball", 20],
        ["ball", 40],
    ]
    # one forward pass per image shared by both concepts: 30, 20, 40 in batches of 2
    assert model.calls == 2


def test_score_column_picks_the_basis(world):
    table = _collect(world, n_concepts=1, n_images=1, score="pooled_iou")
    assert table[["concept", "basis", "image_id"]].values.tolist() == [
        ["face", 0, 30],  # basis 0 (all on): 4/16 in every face image, first in probe order
        ["ball", 1, 20],  # pooled prefers basis 1
    ]
    assert table["iou"].tolist() == pytest.approx([0.25, 0.0])


def test_same_iou_as_the_dissection(world):
    probe, concepts, *_ = world
    alignment = _alignment(
        FixedMaps(),
        probe,
        concepts,
        torch.tensor([0.5, 0.4]),
        (40, 40),
        min_cover=0.5,
        batch_size=3,
        device="cpu",
    )
    table = _collect(world, n_concepts=2, n_images=10)
    for (concept, basis), group in table.groupby(["concept", "basis"]):
        pair = (alignment["concept"] == concept) & (alignment["basis"] == basis)
        expected = alignment.loc[pair, "mean_iou"]
        assert group["iou"].mean() == pytest.approx(float(expected.iloc[0]))
    assert table.groupby("concept")["iou"].mean().to_dict() == pytest.approx(
        {"face": (1 + 0.5 + 0.5 + 1 / 7) / 4, "word": 0.0, "ball": 0.75}
    )


def test_nothing_ranked_gives_an_empty_table_with_the_columns(world):
    probe, concepts, alignment, contributions = world
    table = _collect((probe, concepts, alignment, contributions.assign(rank=0)))
    assert tuple(table.columns) == EXAMPLE_COLUMNS and len(table) == 0


def test_table_survives_parquet(world, tmp_path):
    table = _collect(world, n_concepts=1, n_images=2)
    table.to_parquet(tmp_path / "examples.parquet")
    back = pd.read_parquet(tmp_path / "examples.parquet")
    assert tuple(back.columns) == EXAMPLE_COLUMNS
    assert back.iloc[0]["map"].dtype == np.float32
    assert np.array_equal(back.iloc[0]["map"], table.iloc[0]["map"])


# -------------------------------------------------------------------- figure
def _capture(monkeypatch):
    figures = []

    def save(fig, path):
        figures.append(fig)
        fig.savefig(path, dpi=50, format="png")
        plt.close(fig)

    monkeypatch.setattr(ex, "save_figure", save)
    return figures


def test_plot_draws_one_row_per_concept(world, tmp_path, monkeypatch):
    table = _collect(world, n_concepts=2, n_images=3)
    table.to_parquet(tmp_path / "examples.parquet")
    back = pd.read_parquet(tmp_path / "examples.parquet")
    figures = _capture(monkeypatch)
    out = tmp_path / "examples.png"
    plot_examples(back, world[1], out, "stand-in")
    image = plt.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    (fig,) = figures
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 6  # face 3, word 1, ball 2 (empty cells have no image)
    assert [ax.get_title() for ax in panels] == [
        "IoU 1.00",
        "IoU 0.50",
        "IoU 0.50",
        "IoU 0.00",
        "IoU 1.00",
        "IoU 0.50",
    ]
    labels = [ax.get_ylabel() for ax in panels if ax.get_ylabel()]
    assert labels == ["face (+1, basis 1)", "word (+2, basis 0)", "ball (-1, basis 0)"]
    assert [len(ax.patches) for ax in panels] == [1, 1, 1, 1, 1, 1]  # the concept's boxes
    # the face box on image 30 sits at (0, 0), 20 x 20 pixels
    assert panels[0].patches[0].get_xy() == (0, 0) and panels[0].patches[0].get_width() == 20
    # the region above threshold is outlined where it does not fill the whole image
    assert len(panels[0].collections) == 1
    assert fig.axes[-1].get_ylabel() == "basis probability"  # the colour bar


def test_plot_real_save_and_empty_input(world, tmp_path):
    table = _collect(world, n_concepts=1, n_images=1)
    out = tmp_path / "nested" / "examples.png"
    plot_examples(table, world[1], out, "stand-in")
    assert plt.imread(out).shape[2] in (3, 4)
    empty = tmp_path / "empty.png"
    plot_examples(table.iloc[:0], world[1], empty, "nothing")
    assert empty.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.imread(empty).shape[:2] == (300, 750)  # 5 x 2 inches at dpi 150


def test_plot_names_a_missing_image(world, tmp_path):
    table = _collect(world, n_concepts=1, n_images=1)
    gone = tmp_path / "gone.png"
    table.loc[0, "image_path"] = str(gone)
    with pytest.raises(FileNotFoundError, match="gone.png"):
        plot_examples(table, world[1], tmp_path / "x.png", "missing")
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------- a real tiny DINet
TINY = {
    "arch": "dinet",
    "input_size": [32, 48],
    "n_bases": 6,
    "encoder_channels": 8,
    "encoder_dilations": [1, 2, 4],
    "weights": "none",
    "backbone": {"block": "basic", "layers": [1, 1, 1, 1], "widths": [8, 8, 8, 8], "stem_width": 8},
}


def test_tiny_dinet_end_to_end(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY, "factorised")
    rng = np.random.default_rng(0)
    rows, boxes = [], []
    for i in range(6):
        path = tmp_path / f"{i}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
        rows.append((i, str(path), 64, 96))
        boxes.append((i, "face", "object", 8 * i, 0, 40, 40))
        if i % 2:
            boxes.append((i, "red", "attribute", 48, 16, 48, 48))
    probe = pd.DataFrame(rows, columns=["image_id", "image_path", "height", "width"])
    concepts = pd.DataFrame(boxes, columns=["image_id", "concept", "kind", "x", "y", "w", "h"])
    model.eval()
    with torch.no_grad():
        images = torch.stack([torch.from_numpy(load_image(p, (32, 48))) for p in probe.image_path])
        prob = model(images)["prob"]
    thresholds = torch.quantile(prob.transpose(0, 1).flatten(1), 0.6, dim=1)
    settings = {"min_cover": 0.5, "batch_size": 4, "device": "cpu"}
    alignment = _alignment(model, probe, concepts, thresholds, (32, 48), **settings)
    contributions = pd.DataFrame(
        {
            "concept": ["face", "red"],
            "category": ["social", "color"],
            "contribution": [0.4, -0.3],
            "normalized": [1.0, -1.0],
            "rank": [1, -1],
        }
    )
    table = collect_examples(
        model,
        probe,
        concepts,
        thresholds,
        contributions,
        alignment,
        (32, 48),
        n_images=2,
        max_scan=64,
        **settings,
    )
    assert tuple(table.columns) == EXAMPLE_COLUMNS
    assert table["concept"].tolist() == ["face", "face", "red", "red"]
    assert table["rank"].tolist() == [1, 1, -1, -1]
    assert (table["map_height"] == 4).all() and (table["map_width"] == 6).all()
    assert all(len(m) == 24 and m.dtype == np.float32 for m in table["map"])
    for concept, group in table.groupby("concept"):
        scores = alignment[alignment["concept"] == concept]
        assert (
            group["basis"].iloc[0]
            == scores.sort_values(["mean_iou", "basis"], ascending=[False, True])["basis"].iloc[0]
        )
        assert group["iou"].is_monotonic_decreasing
    for row in table.itertuples():
        # recompute this row's IoU independently from its map, threshold and boxes
        own = concepts[
            (concepts["image_id"] == row.image_id) & (concepts["concept"] == row.concept)
        ]
        mask = coverage_masks([own[["x", "y", "w", "h"]].to_numpy()], (64, 96), (4, 6), 0.5)
        grid = torch.from_numpy(np.asarray(row.map)).view(1, 1, 4, 6)
        expected = iou(grid, torch.tensor([row.threshold]), mask[None])
        assert row.iou == pytest.approx(float(expected))
        assert prob[row.image_id, row.basis].flatten().numpy() == pytest.approx(row.map, abs=1e-6)
    plot_examples(table, concepts, tmp_path / "dinet.png", "tiny DINet")
    assert plt.imread(tmp_path / "dinet.png").ndim == 3
