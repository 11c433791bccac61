"""Contributions of semantics to saliency (METHOD.md 5) and the synthetic check.

``beta(n, c)``: for each basis its top-k concepts by alignment, normalised to
sum 1 (bases whose top-k alignments sum to 0 are dropped). ``R(c) = sum_n
w[n] beta(n, c)``. Positive and negative contributions are ranked separately,
the top ``top_n`` of each normalised by its largest magnitude; categories sum
their concepts' normalised contributions and are normalised the same way.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

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


def category_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Sum of normalised contributions per category; positive totals divided by the
    largest positive, negative totals by the largest-magnitude negative."""
    sums = table.groupby("category")["normalized"].sum().reindex(CATEGORIES, fill_value=0.0)
    positive, negative = sums.clip(lower=0), sums.clip(upper=0)
    scaled = (positive / positive.max() if positive.max() > 0 else positive) + (
        negative / -negative.min() if negative.min() < 0 else negative
    )
    return pd.DataFrame({"category": list(CATEGORIES), "contribution": scaled.to_numpy()})


def recovery(
    contribution: pd.DataFrame, planted: pd.DataFrame, *, min_abs_weight: float = 0.3
) -> dict:
    """How well recovered contributions match planted weights.

    Spearman rank correlation over all planted concepts (a concept the
    dissection never credited counts as 0) and sign agreement over concepts
    with |weight| >= ``min_abs_weight`` (a contribution of exactly 0 is wrong).
    """
    merged = planted.merge(contribution[["concept", "contribution"]], on="concept", how="left")
    merged["contribution"] = merged["contribution"].fillna(0.0)
    rho, p = stats.spearmanr(merged["weight"], merged["contribution"])
    signed = merged[merged["weight"].abs() >= min_abs_weight]
    agree = np.sign(signed["weight"]) == np.sign(signed["contribution"])
    return {
        "n_concepts": len(merged),
        "spearman": float(rho),
        "spearman_p": float(p),
        "n_signed": len(signed),
        "sign_agreement": float(agree.mean()) if len(signed) else float("nan"),
        "min_abs_weight": float(min_abs_weight),
    }
