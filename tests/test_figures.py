"""The report's figures show what their captions say: labels, legends, data."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from figures import check_axes, legend_labels

from saldissect.core.io import write_parquet
from saldissect.recovery.recovery import plot_recovery
from saldissect.report.reporting import plot_categories, plot_interactions, plot_top_semantics

CONCEPTS = {"face": ("social", 1.0), "word": ("text", 0.6), "sky": ("sky", -0.8)}


def contributions(path, values=CONCEPTS):
    names = list(values)
    weight = np.array([v for _, v in values.values()])
    order = np.argsort(-weight)
    rank = np.zeros(len(names), int)
    positive, negative = 1, -1
    for i in order:
        if weight[i] > 0:
            rank[i], positive = positive, positive + 1
    for i in order[::-1]:
        if weight[i] < 0:
            rank[i], negative = negative, negative - 1
    table = pd.DataFrame(
        {
            "concept": names,
            "category": [c for c, _ in values.values()],
            "contribution": weight,
            "normalized": weight / np.abs(weight).max(),
            "rank": rank,
            "contribution_low": weight - 0.1,
            "contribution_high": weight + 0.1,
            "normalized_low": weight - 0.1,
            "normalized_high": weight + 0.1,
            "contrast": weight,
            "contrast_low": weight - 0.1,
            "contrast_high": weight + 0.1,
            "regression": weight,
            "regression_low": weight - 0.1,
            "regression_high": weight + 0.1,
        }
    )
    write_parquet(table, path, "contributions")
    return path


def test_top_semantics_are_bars_by_category(tmp_path, saved_figures):
    plot_top_semantics(contributions(tmp_path / "c.parquet"), tmp_path / "top.png", "Top: m")
    (ax,) = saved_figures[-1].axes
    check_axes(
        ax, xlabel="normalised contribution", title="Top: m", legend=["social", "text", "sky"]
    )
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sky", "word", "face"]


def test_categories_put_models_side_by_side(tmp_path, saved_figures):
    paths = []
    for model, scale in (("dinet", 1.0), ("salicon", -0.5)):
        path = tmp_path / model / "categories.parquet"
        frame = pd.DataFrame(
            {
                "category": ["social", "text"],
                "contribution": [scale, 0.5 * scale],
                "contribution_low": [scale - 0.1, 0.4 * scale],
                "contribution_high": [scale + 0.1, 0.6 * scale],
            }
        )
        write_parquet(frame, path, "categories")
        paths.append(str(path))
    plot_categories(paths, tmp_path / "categories.png", "Categories")
    (ax,) = saved_figures[-1].axes
    check_axes(ax, xlabel="category", ylabel="contribution", legend=["dinet", "salicon"])


def test_interactions_are_a_heatmap_of_the_ranked_concepts(tmp_path, saved_figures):
    """S beside the pair effects' z, both over the ranked concepts; pairs without a
    value (source = target) are left blank."""
    names = list(CONCEPTS)
    semantic = pd.DataFrame(
        [
            (s, t, float(i + j), 0.1 * (i - j), np.nan if s == t else float(i - j), 9, 9)
            for i, s in enumerate(names)
            for j, t in enumerate(names)
        ],
        columns=["source", "target", "weight", "pair_effect", "pair_z", "n_with", "n_without"],
    )
    write_parquet(semantic, tmp_path / "s.parquet", "semantic_interactions")
    out = tmp_path / "interactions.png"
    plot_interactions(tmp_path / "s.parquet", contributions(tmp_path / "c.parquet"), out, "S")
    left, right = saved_figures[-1].axes[:2]
    check_axes(left, xlabel="target", ylabel="source", title="S")
    check_axes(right, xlabel="target", ylabel="source", title="pair effect")
    (image,) = left.images
    shown = image.get_array()
    assert shown.shape == (3, 3) and np.allclose(shown.max(axis=1), 1.0)  # rows scaled
    assert [t.get_text() for t in left.get_xticklabels()] == ["face", "word", "sky"]
    (z,) = right.images
    assert np.ma.getmaskarray(z.get_array()).diagonal().all()  # source = target: blank


def test_recovery_plots_each_readout_of_each_run(tmp_path, saved_figures):
    planted = pd.DataFrame(
        {
            "concept": list(CONCEPTS),
            "category": [c for c, _ in CONCEPTS.values()],
            "kind": "object",
            "weight": [v for _, v in CONCEPTS.values()],
        }
    )
    write_parquet(planted, tmp_path / "planted.parquet", "planted")
    runs = {"synthetic/m": str(contributions(tmp_path / "c.parquet"))}
    plot_recovery(runs, tmp_path / "planted.parquet", tmp_path / "recovery.png", 0.3)
    axes = saved_figures[-1].axes
    assert len(axes) == 3  # the paper's top-k IoU, the contrast, the regression
    for ax, readout in zip(axes, ("top-k IoU", "contrast", "regression"), strict=True):
        check_axes(ax, xlabel="planted weight", ylabel=readout, title="Spearman 1.00")


def test_the_figure_check_fails_on_a_blank_axes(saved_figures, tmp_path):
    fig, ax = plt.subplots()
    ax.set_xlabel("x")
    fig.savefig(tmp_path / "blank.png")
    with pytest.raises(AssertionError, match="nothing drawn"):
        check_axes(saved_figures[-1].axes[0], xlabel="x")
    ax.plot([0, 1], [0, 0], color="white", alpha=0.0)
    with pytest.raises(AssertionError, match="blank"):
        check_axes(ax)
    assert legend_labels(ax) == []
