import math

import cv2
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from figures import check_axes
from scipy import stats

from saldissect.analysis.failures import ODDS_COLUMNS, odds_ratios, split_worst_best
from saldissect.report.failures import (
    FOREST_XLABEL,
    forest_rows,
    plot_failures,
    plot_worst_best,
)
from saldissect.report.reporting import read_rgb

Z95 = 1.959963984540054  # norm.ppf(0.975)


def scores(values, ids=None):
    ids = list(range(len(values))) if ids is None else ids
    return pd.DataFrame({"image_id": ids, "value": values})


# ---------------------------------------------------------------- split_worst_best


def test_split_sizes_use_ceil_and_order_worst_first_best_last():
    # n = 7, fraction 0.2: ceil(1.4) = 2 worst and 2 best.
    table = scores([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8], ids=list("abcdefg"))
    result = split_worst_best(table, fraction=0.2)
    assert list(result.columns) == ["image_id", "value", "group"]
    # worst: b (0.1) then f (0.2); best: g (0.8) then c (0.9), the best on the last row.
    assert list(result["image_id"]) == ["b", "f", "g", "c"]
    assert list(result["group"]) == ["worst", "worst", "best", "best"]
    assert list(result["value"]) == [0.1, 0.2, 0.8, 0.9]


def test_split_ties_broken_by_image_id():
    # All equal: the smaller image_id ranks as worse. n = 6, fraction 0.3 -> ceil(1.8) = 2.
    table = scores([1.0] * 6, ids=[5, 3, 1, 0, 4, 2])
    result = split_worst_best(table, fraction=0.3)
    assert list(result["image_id"]) == [0, 1, 4, 5]
    assert list(result["group"]) == ["worst", "worst", "best", "best"]
    # A tie at the boundary: values 0, 1, 1, 2 with fraction 0.25 -> k = 1, worst id 0;
    # ids 1 and 2 tie at 1.0 and neither is at the ends.
    result = split_worst_best(scores([0.0, 1.0, 1.0, 2.0]), fraction=0.25)
    assert list(result["image_id"]) == [0, 3]


def test_split_lower_is_better():
    # e.g. KLD: the highest values are worst. n = 5, fraction 0.4 -> ceil(2.0) = 2.
    table = scores([0.3, 2.0, 0.1, 1.5, 0.9])
    result = split_worst_best(table, fraction=0.4, higher_is_better=False)
    assert list(result["image_id"]) == [1, 3, 0, 2]
    assert list(result["value"]) == [2.0, 1.5, 0.3, 0.1]
    assert list(result["group"]) == ["worst", "worst", "best", "best"]


def test_split_odd_n_with_half_does_not_overlap():
    # n = 3, fraction 0.5: ceil(1.5) = 2 would overlap; lowered to n // 2 = 1.
    result = split_worst_best(scores([3.0, 1.0, 2.0]), fraction=0.5)
    assert list(result["image_id"]) == [1, 0]


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1.0, float("nan"), "half"])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        split_worst_best(scores([1.0, 2.0, 3.0, 4.0]), fraction=fraction)


def test_split_rejects_too_few_images_and_nan():
    with pytest.raises(ValueError, match="at least 2"):
        split_worst_best(scores([1.0]), fraction=0.5)
    with pytest.raises(ValueError, match="NaN"):
        split_worst_best(scores([1.0, float("nan"), 2.0]), fraction=0.5)


# -------------------------------------------------------------------- odds_ratios


@pytest.fixture
def case():
    """20 images scored 0..19, fraction 0.5: worst = images 0..9, best = 10..19.

    face: worst 0-5 (a = 6, b = 4), best 10, 11 (c = 2, d = 8); image 0 has 3 face
          boxes. OR = 6 * 8 / (4 * 2) = 6.0 (no zero cell).
    sky:  best 12-15 only: a = 0, b = 10, c = 4, d = 6 -> corrected 0.5, 10.5, 4.5, 6.5:
          OR = 0.5 * 6.5 / (10.5 * 4.5) = 3.25 / 47.25 = 0.0687831.
    zebra: worst 6 only (unknown category -> other); 1 image.
    Images 7, 8, 9 and 16..19 have no concepts; image 99 is not in either group.
    """
    groups = split_worst_best(scores([float(i) for i in range(20)]), fraction=0.5)
    rows = [(0, "face")] * 3 + [(i, "face") for i in (1, 2, 3, 4, 5, 10, 11)]
    rows += [(i, "sky") for i in (12, 13, 14, 15)] + [(6, "zebra"), (99, "face"), (99, "sky")]
    concepts = pd.DataFrame(rows, columns=["image_id", "concept"])
    return groups, concepts, {"face": "social", "sky": "sky"}


def test_odds_ratio_columns_counts_and_order(case):
    table = odds_ratios(*case)
    assert list(table.columns) == list(ODDS_COLUMNS)
    # zebra: a = 1, b = 9, c = 0, d = 10 -> 1.5 * 10.5 / (9.5 * 0.5) = 3.3157895, below face.
    assert list(table["concept"]) == ["face", "zebra", "sky"]
    by = table.set_index("concept")
    # face in image 0 three times counts once: 6 worst images, not 8.
    assert by.loc["face", ["n_worst", "n_best"]].tolist() == [6, 2]
    # the 3 + 4 images without concepts still count: 10 per group.
    assert by["n_worst_images"].tolist() == [10, 10, 10]
    assert by["n_best_images"].tolist() == [10, 10, 10]
    assert by.loc["sky", ["n_worst", "n_best"]].tolist() == [0, 4]
    assert by.loc["zebra", "odds_ratio"] == pytest.approx(1.5 * 10.5 / (9.5 * 0.5))


def test_odds_ratio_without_zero_cell_and_woolf_interval(case):
    face = odds_ratios(*case).set_index("concept").loc["face"]
    assert face["odds_ratio"] == pytest.approx(6.0)
    # se = sqrt(1/6 + 1/4 + 1/2 + 1/8) = 1.0206207; CI = 6 exp(-+1.96 se) = 0.8117, 44.351.
    se = math.sqrt(1 / 6 + 1 / 4 + 1 / 2 + 1 / 8)
    assert face["ci_low"] == pytest.approx(math.exp(math.log(6) - Z95 * se))
    assert face["ci_high"] == pytest.approx(math.exp(math.log(6) + Z95 * se))
    assert face["ci_low"] == pytest.approx(0.8117033, rel=1e-6)
    assert face["ci_high"] == pytest.approx(44.351181, rel=1e-6)
    # 90 %: z = 1.6448536 -> lower bound 6 exp(-1.6448536 se) = 1.1196182.
    face90 = odds_ratios(*case, confidence=0.9).set_index("concept").loc["face"]
    assert face90["ci_low"] == pytest.approx(1.1196182, rel=1e-6)


def test_odds_ratio_with_zero_cell_uses_haldane_correction(case):
    sky = odds_ratios(*case).set_index("concept").loc["sky"]
    assert sky["odds_ratio"] == pytest.approx(3.25 / 47.25)
    se = math.sqrt(1 / 0.5 + 1 / 10.5 + 1 / 4.5 + 1 / 6.5)  # = 1.5720390
    assert sky["ci_low"] == pytest.approx(3.25 / 47.25 * math.exp(-Z95 * se))  # 0.0031576
    assert sky["ci_high"] == pytest.approx(3.25 / 47.25 * math.exp(Z95 * se))  # 1.4983164
    assert sky["ci_high"] == pytest.approx(1.4983164, rel=1e-6)


def test_fisher_p_values_on_uncorrected_counts(case):
    by = odds_ratios(*case).set_index("concept")
    # face [[6, 4], [2, 8]]: 8 concept images, P(a >= 6) = (210*45 + 120*10 + 45) / C(20, 8)
    # = 10695 / 125970; symmetric, so two-sided p = 21390 / 125970 = 0.1698023.
    assert by.loc["face", "p_value"] == pytest.approx(21390 / 125970)
    assert by.loc["face", "p_value"] == pytest.approx(stats.fisher_exact([[6, 4], [2, 8]]).pvalue)
    # sky [[0, 10], [4, 6]]: 2 * C(10, 4) / C(20, 4) = 420 / 4845 = 0.0866873.
    assert by.loc["sky", "p_value"] == pytest.approx(420 / 4845)
    assert by.loc["sky", "p_value"] == pytest.approx(stats.fisher_exact([[0, 10], [4, 6]]).pvalue)


def test_categories_and_min_images(case):
    table = odds_ratios(*case, min_images=2)
    # zebra is in only 1 of the grouped images; image 99 (ungrouped) does not count.
    assert list(table["concept"]) == ["face", "sky"]
    assert table.set_index("concept")["category"].to_dict() == {"face": "social", "sky": "sky"}
    assert odds_ratios(*case).set_index("concept").loc["zebra", "category"] == "other"


def test_odds_ratios_with_no_concepts_is_empty_with_columns(case):
    groups, _, categories = case
    empty = pd.DataFrame({"image_id": [99], "concept": ["face"]})
    table = odds_ratios(groups, empty, categories)
    assert list(table.columns) == list(ODDS_COLUMNS) and table.empty


# ------------------------------------------------------------------------ figures


def test_forest_rows_takes_both_ends_without_duplicates(case):
    table = odds_ratios(*case)
    assert list(forest_rows(table, 1)["concept"]) == ["face", "sky"]
    assert list(forest_rows(table, 10)["concept"]) == ["face", "zebra", "sky"]


def test_plot_failures_writes_png(case, tmp_path, saved_figures):
    out = tmp_path / "sub" / "failures.png"
    table = odds_ratios(*case)
    plot_failures(table, out, "NSS failures", top=10)
    (ax,) = saved_figures[-1].axes
    check_axes(ax, xlabel=FOREST_XLABEL, title="NSS failures")
    assert ax.get_xscale() == "log"
    # one row per concept, labelled with its name and counts
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(label.split(" (")[0] for label in labels) == sorted(table["concept"])
    # 3 rows: figsize (7, max(3, 0.28 * 3 + 1.4) = 3) at 150 dpi -> 1050 x 450 pixels.
    image = mpimg.imread(out)
    assert image.shape == (450, 1050, 4)
    assert image[..., :3].std() > 0  # something was drawn
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temporary left behind
    assert FOREST_XLABEL == "odds ratio, worst vs best images (log scale)"


def test_plot_failures_with_many_rows_and_empty_table(case, tmp_path):
    table = odds_ratios(*case)
    many = pd.concat([table.assign(concept=table["concept"] + str(i)) for i in range(8)])
    plot_failures(many, tmp_path / "many.png", "many", top=5)
    # 10 rows: height 0.28 * 10 + 1.4 = 4.2 in -> 630 pixels.
    assert mpimg.imread(tmp_path / "many.png").shape == (630, 1050, 4)
    plot_failures(table.iloc[:0], tmp_path / "empty.png", "none")
    assert mpimg.imread(tmp_path / "empty.png").shape == (450, 1050, 4)


def _write_image(path, bgr):
    image = np.zeros((12, 16, 3), dtype=np.uint8)
    image[:] = bgr
    assert cv2.imwrite(str(path), image)


def test_read_rgb_converts_bgr(tmp_path):
    _write_image(tmp_path / "blue.png", (255, 0, 0))  # pure blue in BGR
    assert read_rgb(tmp_path / "blue.png")[0, 0].tolist() == [0, 0, 255]


def test_plot_worst_best_writes_grid_and_reports_missing_files(tmp_path):
    groups = split_worst_best(scores([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), fraction=0.5)
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.png")
        _write_image(paths[-1], (40 * i, 100, 200 - 30 * i))
    images = pd.DataFrame({"image_id": range(6), "image_path": [str(p) for p in paths]})
    out = tmp_path / "grid.png"
    plot_worst_best(groups, images, out, "NSS worst / best", n=2)
    # 2 columns: figsize (2.4 * 2 + 0.4, 5.2) = (5.2, 5.2) -> 780 x 780 pixels.
    assert mpimg.imread(out).shape == (780, 780, 4)
    paths[5].unlink()  # the best image
    with pytest.raises(FileNotFoundError, match=str(paths[5])):
        plot_worst_best(groups, images, tmp_path / "again.png", "t", n=2)
