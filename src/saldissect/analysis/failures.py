"""Failure patterns: which concepts are over-represented where a model scores worst.

Following "What Do Deep Saliency Models Learn about Visual Attention?" (NeurIPS
2023), the validation images are ranked by one per-image metric; the worst
``ceil(fraction * n)`` and the same number of best images form two groups, and
each concept gets the odds ratio of appearing in a worst rather than a best
image. An odds ratio above 1 means the concept is over-represented in failures.

Conventions: one total order, worst first, is used throughout: by score (ascending
when higher is better, descending otherwise), and among equal scores the smaller
``image_id`` ranks as worse. An image counts once per concept however many boxes
of it it has; images without any concept still count in their group's total.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from saldissect.core.io import SCHEMAS

GROUP_COLUMNS = SCHEMAS["failure_images"]
ODDS_COLUMNS = SCHEMAS["failures"]


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}; has {list(frame.columns)}")


def split_worst_best(
    scores: pd.DataFrame, *, fraction: float, higher_is_better: bool = True
) -> pd.DataFrame:
    """The worst and best ``ceil(fraction * n)`` images by one metric.

    ``scores`` has columns image_id, value (one row per image). Returns columns
    image_id, value, group ("worst" or "best"), rows in the worst-first order of
    the module docstring: the worst-scoring image on the first row, the best on
    the last. When ``ceil(fraction * n)`` exceeds ``n // 2`` (odd ``n`` with
    ``fraction`` 0.5) it is lowered to ``n // 2`` so that no image is in both groups.
    """
    require_columns(scores, ("image_id", "value"), "scores")
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise ValueError(f"fraction must be a number in (0, 0.5], got {fraction!r}") from None
    if not 0 < fraction <= 0.5:  # also rejects NaN
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction!r}")
    n = len(scores)
    if n < 2:
        raise ValueError(f"need at least 2 images to split into worst and best, got {n}")
    values = pd.to_numeric(scores["value"], errors="raise").astype(float)
    if values.isna().any():
        bad = list(scores.loc[values.isna(), "image_id"][:5])
        raise ValueError(f"scores: {int(values.isna().sum())} NaN values (images {bad}...)")
    if scores["image_id"].duplicated().any():
        bad = list(scores.loc[scores["image_id"].duplicated(), "image_id"][:5])
        raise ValueError(f"scores: duplicate image_id {bad}")
    k = min(math.ceil(fraction * n), n // 2)
    ordered = (
        pd.DataFrame({"image_id": scores["image_id"].to_numpy(), "value": values.to_numpy()})
        .sort_values(["value", "image_id"], ascending=[higher_is_better, True], kind="mergesort")
        .reset_index(drop=True)
    )
    worst = ordered.head(k).assign(group="worst")
    best = ordered.tail(k).assign(group="best")
    return pd.concat([worst, best], ignore_index=True)[list(GROUP_COLUMNS)]


def _woolf(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, z: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Odds ratio and Woolf interval from (possibly corrected) cell arrays."""
    log_or = np.log(a) + np.log(d) - np.log(b) - np.log(c)
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return np.exp(log_or), np.exp(log_or - z * se), np.exp(log_or + z * se)


def odds_ratios(
    groups: pd.DataFrame,
    concepts: pd.DataFrame,
    categories: dict[str, str],
    *,
    min_images: int = 1,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per-concept odds ratio of appearing in a worst rather than a best image.

    ``groups`` is the output of ``split_worst_best``; ``concepts`` has columns
    image_id, concept (one row per box; rows for other images are ignored). For
    every concept present in at least ``min_images`` of the grouped images:
    a / b = worst images with / without it, c / d = best images with / without.
    odds_ratio = (a d) / (b c), with 0.5 added to all four cells only when one of
    them is 0 (Haldane-Anscombe); the Woolf interval exp(log OR +- z se),
    se = sqrt(1/a + 1/b + 1/c + 1/d), uses the same cells; p_value is the
    two-sided Fisher exact test on the uncorrected counts. Returns the columns of
    ``ODDS_COLUMNS`` (n_worst = a, n_best = c, n_worst_images = a + b,
    n_best_images = c + d), sorted by odds_ratio descending, then concept.
    Concepts missing from ``categories`` are 'other'.
    """
    require_columns(groups, GROUP_COLUMNS, "groups")
    require_columns(concepts, ("image_id", "concept"), "concepts")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    unknown = sorted(set(groups["group"]) - {"worst", "best"})
    if unknown:
        raise ValueError(f"groups: unknown group labels {unknown}; expected 'worst', 'best'")
    n_worst_images = int((groups["group"] == "worst").sum())
    n_best_images = int((groups["group"] == "best").sum())
    present = (
        concepts[["image_id", "concept"]]
        .drop_duplicates()
        .merge(groups[["image_id", "group"]], on="image_id", how="inner")
    )
    counts = (
        present.groupby(["concept", "group"]).size().unstack("group", fill_value=0)
        if len(present)
        else pd.DataFrame(columns=["worst", "best"])
    ).reindex(columns=["worst", "best"], fill_value=0)
    counts = counts[counts["worst"] + counts["best"] >= min_images]
    names = [str(c) for c in counts.index]
    a = counts["worst"].to_numpy(dtype=np.int64)
    c = counts["best"].to_numpy(dtype=np.int64)
    b = n_worst_images - a
    d = n_best_images - c
    cells = np.stack([a, b, c, d]).astype(float)
    cells = cells + 0.5 * (cells == 0).any(axis=0)
    from scipy import stats  # here: scipy.stats takes half a second, in every analysis job

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    ratio, low, high = _woolf(*cells, z)
    p_values = [
        float(stats.fisher_exact([[ai, bi], [ci, di]], alternative="two-sided").pvalue)
        for ai, bi, ci, di in zip(a, b, c, d, strict=True)
    ]
    table = pd.DataFrame(
        {
            "concept": pd.Series(names, dtype=object),
            "category": pd.Series([categories.get(n, "other") for n in names], dtype=object),
            "n_worst": a,
            "n_best": c,
            "n_worst_images": np.full(len(names), n_worst_images, dtype=np.int64),
            "n_best_images": np.full(len(names), n_best_images, dtype=np.int64),
            "odds_ratio": np.asarray(ratio, dtype=float),
            "ci_low": np.asarray(low, dtype=float),
            "ci_high": np.asarray(high, dtype=float),
            "p_value": np.asarray(p_values, dtype=float),
        }
    )
    return table.sort_values(
        ["odds_ratio", "concept"], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)[list(ODDS_COLUMNS)]
