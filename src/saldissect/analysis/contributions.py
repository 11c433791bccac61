"""Contributions of semantics to saliency (docs/method.md 5) and the synthetic check.

``beta(n, c)``: for each basis its top-k concepts by alignment, normalised to
sum 1 (bases whose top-k alignments sum to 0 are dropped). ``R(c) = sum_n
w[n] beta(n, c)``. Positive and negative contributions are ranked separately,
the top ``top_n`` of each normalised by its largest magnitude; categories sum
their concepts' normalised contributions and are normalised the same way.

Uncertainty: the dissection draws Poisson bootstrap replicates over probe
images (`saldissect.analysis.dissection.PoissonBootstrap`); every replicate goes
through the same steps, and the percentile interval of the replicates is
reported beside each point estimate (``*_low``, ``*_high``; NaN without
replicates). The basis weights come from training, not from the probe set,
and are held fixed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from saldissect.core.io import READOUT_COLUMNS

CATEGORIES = (
    "action",
    "social",
    "animal",
    "vehicle",
    "clothing",
    "text",
    "sky",
    "ground",
    "scene",
    "color",
    "other",
)


def load_categories(path: str | Path | None = None) -> dict[str, str]:
    """Concept -> category mapping from a CSV (concept, category); default: the reference."""
    if path in (None, "", "default"):
        with resources.files("saldissect").joinpath("data/concept_categories.csv").open() as handle:
            table = pd.read_csv(handle)
    else:
        table = pd.read_csv(path)
    unknown = sorted(set(table["category"]) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"{path}: unknown categories {unknown}; expected {list(CATEGORIES)}")
    return dict(zip(table["concept"], table["category"], strict=True))


def beta(alignment: pd.DataFrame, top_k: int, score: str = "mean_iou") -> pd.DataFrame:
    """Top-k concepts per basis, normalised to sum 1: columns basis, concept, beta."""
    ranked = alignment[alignment[score] > 0].sort_values(
        ["basis", score, "concept"], ascending=[True, False, True]
    )
    top = ranked.groupby("basis", sort=False).head(top_k)
    total = top.groupby("basis")[score].transform("sum")
    return pd.DataFrame(
        {"basis": top["basis"], "concept": top["concept"], "beta": top[score] / total}
    ).reset_index(drop=True)


def contributions(
    alignment: pd.DataFrame,
    basis_weights: pd.DataFrame,
    categories: dict[str, str],
    *,
    top_k: int = 5,
    top_n: int = 30,
    score: str = "mean_iou",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-concept contributions and per-category totals.

    Returns ``contributions`` (concept, category, contribution, normalized,
    rank) for every concept in the alignment table (rank 1..top_n among the
    positive ones, -1..-top_n among the negative ones, 0 otherwise; normalized
    is 0 outside the ranked sets) and ``categories`` (category, contribution).
    Concepts missing from ``categories`` are 'other'.
    """
    weights = basis_weights.set_index("basis")["weight"]
    b = beta(alignment, top_k, score)
    b["weighted"] = b["beta"] * weights.reindex(b["basis"]).to_numpy()
    totals = b.groupby("concept")["weighted"].sum()
    concepts = sorted(set(alignment["concept"]))
    table = pd.DataFrame({"concept": concepts})
    table["category"] = [categories.get(c, "other") for c in concepts]
    table["contribution"] = totals.reindex(concepts).fillna(0.0).to_numpy()
    table["normalized"] = 0.0
    table["rank"] = 0
    for sign in (1, -1):
        chosen = table[sign * table["contribution"] > 0].sort_values(
            "contribution", ascending=sign < 0
        )
        chosen = chosen.head(top_n)
        if len(chosen):
            scale = chosen["contribution"].abs().max()
            table.loc[chosen.index, "normalized"] = chosen["contribution"] / scale
            table.loc[chosen.index, "rank"] = sign * np.arange(1, len(chosen) + 1)
    table = table.sort_values(["contribution", "concept"], ascending=[False, True]).reset_index(
        drop=True
    )
    return table, category_scores(table)


def with_readouts(table: pd.DataFrame, readouts: pd.DataFrame) -> pd.DataFrame:
    """``table`` (per concept) with the contrast and regression readouts and their
    intervals; a concept the readouts do not know gets 0 and NaN intervals. A
    name seen both as object and attribute takes the kind seen in more images."""
    per_concept = readouts.sort_values(["n_images", "kind"], ascending=[False, True])
    per_concept = per_concept.drop_duplicates("concept").set_index("concept")
    table = table.copy()
    for column in READOUT_COLUMNS:
        values = per_concept[column].reindex(table["concept"])
        interval = column.endswith(("_low", "_high"))
        table[column] = (values if interval else values.fillna(0.0)).to_numpy()
    return table


def _normalise_rows(matrix: np.ndarray, top_n: int) -> np.ndarray:
    """Row-wise version of the ranking in `contributions`: in every row the
    ``top_n`` largest positive entries divided by the largest one, the same for
    the negative ones, everything else 0."""
    out = np.zeros_like(matrix)
    for sign in (1.0, -1.0):
        signed = np.where(sign * matrix > 0, sign * matrix, 0.0)
        order = np.argsort(-signed, axis=1, kind="stable")
        position = np.empty_like(order)
        np.put_along_axis(position, order, np.arange(matrix.shape[1])[None, :], axis=1)
        chosen = (signed > 0) & (position < top_n)
        scale = signed.max(axis=1, keepdims=True)
        out += np.where(chosen, sign * signed / np.where(scale > 0, scale, 1.0), 0.0)
    return out


def _scale_categories(sums: np.ndarray) -> np.ndarray:
    """Row-wise version of `category_scores`' scaling of per-category sums."""
    positive, negative = sums.clip(min=0), sums.clip(max=0)
    top = positive.max(axis=1, keepdims=True)
    bottom = -negative.min(axis=1, keepdims=True)
    return np.where(top > 0, positive / np.where(top > 0, top, 1.0), positive) + np.where(
        bottom > 0, negative / np.where(bottom > 0, bottom, 1.0), negative
    )


def replicate_contributions(
    replicates: pd.DataFrame,
    basis_weights: pd.DataFrame,
    concepts: list[str],
    *,
    top_k: int,
    n_replicates: int | None = None,
) -> np.ndarray:
    """R x C contributions of ``concepts``, one row per bootstrap replicate.

    ``replicates`` holds (replicate, basis, concept, value), at least each
    basis's ``top_k`` concepts per replicate (`PoissonBootstrap.top_table`); a
    replicate without rows (nothing aligned) still counts when ``n_replicates``
    says how many were drawn.
    """
    if replicates.empty and not n_replicates:
        return np.zeros((0, len(concepts)))
    top = replicates[replicates["value"] > 0].sort_values(
        ["replicate", "basis", "value", "concept"], ascending=[True, True, False, True]
    )
    top = top.groupby(["replicate", "basis"], sort=False).head(top_k)
    total = top.groupby(["replicate", "basis"])["value"].transform("sum")
    weights = basis_weights.set_index("basis")["weight"].reindex(top["basis"]).to_numpy()
    weighted = (top["value"] / total).to_numpy() * weights
    column = pd.Index(concepts).get_indexer(top["concept"])
    if n_replicates is None:
        n_replicates = int(replicates["replicate"].max()) + 1
    matrix = np.zeros((n_replicates, len(concepts)))
    keep = column >= 0
    np.add.at(matrix, (top["replicate"].to_numpy()[keep], column[keep]), weighted[keep])
    return matrix


def with_intervals(
    table: pd.DataFrame,
    categories_table: pd.DataFrame,
    replicates: pd.DataFrame,
    basis_weights: pd.DataFrame,
    *,
    top_k: int,
    top_n: int,
    confidence: float = 0.95,
    n_replicates: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add percentile bootstrap intervals to the outputs of `contributions`.

    ``contribution_low/high``: the interval of each concept's contribution.
    ``normalized_low/high``: the same interval on the point estimate's scale
    (divided by the largest magnitude of the concept's sign), for ranked
    concepts only. Categories: each replicate is normalised and summed per
    category as the point estimate is, and the interval taken over replicates.
    """
    table, categories_table = table.copy(), categories_table.copy()
    concepts = table["concept"].tolist()
    matrix = replicate_contributions(
        replicates, basis_weights, concepts, top_k=top_k, n_replicates=n_replicates
    )
    if not len(matrix):
        for column in ("contribution_low", "contribution_high"):
            table[column] = np.nan
            categories_table[column] = np.nan
        table["normalized_low"] = table["normalized_high"] = np.nan
        return table, categories_table
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(matrix, [alpha, 1.0 - alpha], axis=0)
    table["contribution_low"], table["contribution_high"] = low, high
    ranked = table["rank"] != 0
    scale = np.where(
        table["rank"] > 0,
        table.loc[table["rank"] > 0, "contribution"].abs().max(),
        table.loc[table["rank"] < 0, "contribution"].abs().max(),
    )
    table["normalized_low"] = np.where(ranked, low / scale, np.nan)
    table["normalized_high"] = np.where(ranked, high / scale, np.nan)
    category_of = table["category"].map({c: i for i, c in enumerate(CATEGORIES)}).to_numpy()
    onehot = np.zeros((len(concepts), len(CATEGORIES)))
    onehot[np.arange(len(concepts)), category_of] = 1.0
    scores = _scale_categories(_normalise_rows(matrix, top_n) @ onehot)
    category_low, category_high = np.quantile(scores, [alpha, 1.0 - alpha], axis=0)
    position = categories_table["category"].map({c: i for i, c in enumerate(CATEGORIES)})
    categories_table["contribution_low"] = category_low[position.to_numpy()]
    categories_table["contribution_high"] = category_high[position.to_numpy()]
    return table, categories_table


def category_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Sum of normalised contributions per category; positive totals divided by the
    largest positive, negative totals by the largest-magnitude negative."""
    sums = table.groupby("category")["normalized"].sum().reindex(CATEGORIES, fill_value=0.0)
    positive, negative = sums.clip(lower=0), sums.clip(upper=0)
    scaled = (positive / positive.max() if positive.max() > 0 else positive) + (
        negative / -negative.min() if negative.min() < 0 else negative
    )
    return pd.DataFrame({"category": list(CATEGORIES), "contribution": scaled.to_numpy()})


def heatmap_concepts(contributions: pd.DataFrame, top: int) -> list[str]:
    """The ``top`` most positive concepts (strongest first), then the ``top`` most negative."""
    ranked = contributions[contributions["rank"] != 0]
    positive = ranked[ranked["rank"].between(1, top)].sort_values("rank")["concept"]
    negative = ranked[ranked["rank"].between(-top, -1)].sort_values("rank", ascending=False)[
        "concept"
    ]
    return list(positive) + list(negative)
