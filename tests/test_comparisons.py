import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from figures import check_axes, legend_labels

from saldissect.analysis.contributions import CATEGORIES
from saldissect.report.comparisons import (
    concepts_across,
    plot_progressive,
    plot_replicates,
    plot_training_data,
    progressive_table,
    rank_stability,
    summarise_stability,
    training_data_table,
)

NAN = float("nan")
CATEGORY = {"a": "animal", "b": "animal", "c": "sky", "d": "text", "e": "animal", "f": "sky"}


def contributions(values: dict[str, float], ci: float | None = 0.1) -> pd.DataFrame:
    """A contributions table; bounds value +- ci (NaN when ci is None), normalized = value / max."""
    concepts = list(values)
    value = np.array([values[c] for c in concepts], dtype=float)
    half = NAN if ci is None else ci
    return pd.DataFrame(
        {
            "concept": concepts,
            "category": [CATEGORY[c] for c in concepts],
            "contribution": value,
            "normalized": value / np.abs(value).max(),
            "rank": 0,
            "contribution_low": value - half,
            "contribution_high": value + half,
            "normalized_low": NAN,
            "normalized_high": NAN,
        }
    )


def categories(values: dict[str, float], lows: dict[str, float], highs: dict[str, float]):
    return pd.DataFrame(
        {
            "category": list(values),
            "contribution": list(values.values()),
            "contribution_low": [lows.get(k, NAN) for k in values],
            "contribution_high": [highs.get(k, NAN) for k in values],
        }
    )


RUN = {"a": 3.0, "b": 2.0, "c": 1.0, "d": -0.5}


def test_identical_runs_agree_perfectly():
    # top 3 by |contribution| = a, b, c (d = -0.5 is 4th); same ranking -> tau 1, overlap 3/3;
    # exact two-sided p for n = 3 and no discordant pair: 2 * 1/3! = 1/3.
    pairs = rank_stability({"seed 0": contributions(RUN), "seed 1": contributions(RUN)}, top=3)
    assert list(pairs.columns) == [
        "run_a",
        "run_b",
        "n_concepts",
        "kendall_tau",
        "p_value",
        "top_overlap",
    ]
    row = pairs.iloc[0]
    assert (row.run_a, row.run_b, row.n_concepts) == ("seed 0", "seed 1", 3)
    assert row.kendall_tau == pytest.approx(1.0)
    assert row.p_value == pytest.approx(1 / 3)
    assert row.top_overlap == 1.0


def test_reversed_order_gives_minus_one():
    # run b = (a 1, b 2, c 3): same top set, every pair discordant -> tau -1, overlap 1.
    pairs = rank_stability(
        {"x": contributions({"a": 3, "b": 2, "c": 1}), "y": contributions({"a": 1, "b": 2, "c": 3})}
    )
    assert pairs.loc[0, "kendall_tau"] == pytest.approx(-1.0)
    assert pairs.loc[0, "top_overlap"] == pytest.approx(3 / 10)  # default top 10
    assert pairs.loc[0, "n_concepts"] == 3


def test_concept_missing_from_a_run_counts_as_zero():
    # top 3: x = {a, b, c}, y = {a, b, d}; union (a, b, c, d):
    # x = (3, 2, 1, 0), y = (3, 2, 0, 1): only (c, d) discordant -> tau (5 - 1) / 6 = 2/3,
    # exact p = 2 * 4/24 = 1/3 (4 of 24 permutations have <= 1 discordant pair).
    # (Dropping c and d instead of zero-filling would give tau 1 on n = 2.)
    pairs = rank_stability(
        {
            "x": contributions({"a": 3, "b": 2, "c": 1}),
            "y": contributions({"a": 3, "b": 2, "d": 1}),
        },
        top=3,
    )
    row = pairs.iloc[0]
    assert row.n_concepts == 4
    assert row.kendall_tau == pytest.approx(2 / 3)
    assert row.p_value == pytest.approx(1 / 3)
    assert row.top_overlap == pytest.approx(2 / 3)


def test_top_truncates_the_union():
    # top 2: both runs' top = {a, b}; union of 2 concepts, identical -> tau 1, overlap 1.
    pairs = rank_stability({"p": contributions(RUN), "q": contributions(RUN)}, top=2)
    assert pairs.loc[0, "n_concepts"] == 2
    assert pairs.loc[0, "kendall_tau"] == pytest.approx(1.0)
    assert pairs.loc[0, "top_overlap"] == 1.0


def test_three_runs_give_three_pairs_in_key_order_and_summary():
    reversed_run = {"a": 1.0, "b": 2.0, "c": 3.0}
    tables = {
        "seed 2": contributions({"a": 3, "b": 2, "c": 1}),
        "seed 0": contributions({"a": 3, "b": 2, "c": 1}),
        "seed 1": contributions(reversed_run),
    }
    pairs = rank_stability(tables, top=3)
    assert list(zip(pairs["run_a"], pairs["run_b"], strict=True)) == [
        ("seed 2", "seed 0"),
        ("seed 2", "seed 1"),
        ("seed 0", "seed 1"),
    ]
    # taus: identical 1, reversed -1, reversed -1 -> mean -1/3, min -1, max 1.
    assert pairs["kendall_tau"].tolist() == pytest.approx([1.0, -1.0, -1.0])
    summary = summarise_stability(pairs)
    assert summary["n_pairs"] == 3
    assert summary["mean_kendall_tau"] == pytest.approx(-1 / 3)
    assert summary["min_kendall_tau"] == pytest.approx(-1.0)
    assert summary["max_kendall_tau"] == pytest.approx(1.0)


def test_fewer_than_two_runs_raise():
    with pytest.raises(ValueError, match="at least 2"):
        rank_stability({"seed 0": contributions(RUN)})
    with pytest.raises(ValueError):
        rank_stability({})


def test_progressive_table_is_long_and_sorted():
    # keys out of order, concepts out of order: 2 epochs x 2 concepts = 4 rows, epoch then concept.
    tables = {3: contributions({"b": 2.0, "a": -1.0}), 1: contributions({"b": 1.0, "a": 0.5})}
    table = progressive_table(tables)
    assert list(table.columns) == [
        "epoch",
        "concept",
        "category",
        "contribution",
        "contribution_low",
        "contribution_high",
        "normalized",
        "rank",
    ]
    assert table.shape == (4, 8)
    assert table["epoch"].tolist() == [1, 1, 3, 3]
    assert table["concept"].tolist() == ["a", "b", "a", "b"]
    assert table["contribution"].tolist() == pytest.approx([0.5, 1.0, -1.0, 2.0])
    assert table["contribution_low"].tolist() == pytest.approx([0.4, 0.9, -1.1, 1.9])
    # normalized = value / max |value| of its epoch: epoch 3 -> a -1/2, b 1.
    assert table["normalized"].tolist() == pytest.approx([0.5, 1.0, -0.5, 1.0])


def test_training_data_table_columns_and_values():
    salicon = categories({"animal": 1.0, "sky": -0.5}, {"animal": 0.8}, {"animal": 1.1})
    mit = categories({"sky": 0.25, "animal": 0.5}, {"sky": 0.1, "animal": 0.4}, {"sky": 0.3})
    wide = training_data_table({"salicon": salicon, "mit1003": mit})
    assert list(wide.columns) == [
        "category",
        "salicon",
        "salicon_low",
        "salicon_high",
        "mit1003",
        "mit1003_low",
        "mit1003_high",
    ]
    assert wide["category"].tolist() == list(CATEGORIES)
    row = wide.set_index("category")
    assert row.loc["animal"].tolist() == pytest.approx([1.0, 0.8, 1.1, 0.5, 0.4, NAN], nan_ok=True)
    assert row.loc["sky"].tolist() == pytest.approx([-0.5, NAN, NAN, 0.25, 0.1, 0.3], nan_ok=True)
    # a category absent from a table counts 0 with NaN bounds
    assert row.loc["text", "salicon"] == 0.0
    assert math.isnan(row.loc["text", "salicon_low"])


def test_concepts_across_takes_the_union_and_fills_zero():
    # top 2: A -> a (3), b (|-2|); B -> d (5), a (1). Union {a, b, d};
    # sorted by A descending: a 3, d 0 (absent), b -2.
    tables = {"A": contributions({"a": 3, "b": -2, "c": 1}), "B": contributions({"d": 5, "a": 1})}
    wide = concepts_across(tables, top=2)
    assert list(wide.columns) == ["concept", "category", "A", "B"]
    assert wide["concept"].tolist() == ["a", "d", "b"]
    assert wide["category"].tolist() == ["animal", "text", "animal"]
    assert wide["A"].tolist() == [3.0, 0.0, -2.0]
    assert wide["B"].tolist() == [1.0, 5.0, 0.0]


def _png(path) -> None:
    assert path.stat().st_size > 0
    image = plt.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_plot_progressive_with_nan_bounds(tmp_path, saved_figures):
    values = {"a": 2.0, "b": 1.0, "c": 0.5, "d": -1.0, "e": -0.2}
    tables = {
        1: contributions({k: v / 2 for k, v in values.items()}, ci=None),
        2: contributions(values, ci=0.2),
        4: contributions({k: 1.5 * v for k, v in values.items()}, ci=0.3),
    }
    table = progressive_table(tables)
    table.loc[table["concept"] == "b", ["contribution_low", "contribution_high"]] = NAN
    plot_progressive(table, tmp_path / "progressive.png", "progressive", top=2)
    _png(tmp_path / "progressive.png")
    (ax,) = saved_figures[-1].axes
    # the final model's top two positive and top two negative concepts, one line each
    check_axes(ax, xlabel="epoch", ylabel="contribution", title="progressive")
    assert {label.split(" (")[0] for label in legend_labels(ax)} == {"a", "b", "d", "e"}
    assert sorted(ax.lines[0].get_xdata()) == [1, 2, 4]
    plot_progressive(progressive_table({5: tables[2]}), tmp_path / "one.png", "one epoch")
    _png(tmp_path / "one.png")


def test_plot_training_data_with_nan_bounds(tmp_path, saved_figures):
    salicon = categories({"animal": 1.0, "sky": -0.5}, {"animal": 0.8}, {"animal": 1.1})
    mit = categories({"sky": 0.25, "animal": 0.5}, {"sky": 0.1, "animal": 0.4}, {"sky": 0.3})
    plot_training_data({"salicon": salicon, "mit1003": mit}, tmp_path / "data.png", "data")
    _png(tmp_path / "data.png")
    (ax,) = saved_figures[-1].axes
    check_axes(ax, xlabel="category", ylabel="category contribution", legend=["salicon", "mit1003"])
    plot_training_data({"salicon": salicon}, tmp_path / "single.png", "single")
    _png(tmp_path / "single.png")


def test_plot_replicates_with_nan_bounds(tmp_path, saved_figures):
    tables = {
        "seed 0": contributions({"a": 3, "b": -2, "c": 1}),
        "seed 1": contributions({"d": 5, "a": 1}, ci=None),
        "seed 2": contributions({"a": 2, "f": -1, "e": 0.5}, ci=0.4),
    }
    plot_replicates(tables, tmp_path / "replicates.png", "replicates", top=2)
    _png(tmp_path / "replicates.png")
    (ax,) = saved_figures[-1].axes
    check_axes(ax, xlabel="contribution", title="replicates", legend=list(tables))
