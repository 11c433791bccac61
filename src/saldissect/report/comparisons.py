"""Comparisons of contributions across seed replicates, training epochs and training data.

Inputs are ``contributions`` tables (concept, category, contribution, normalized,
rank, contribution_low, contribution_high, normalized_low, normalized_high; the
``*_low``/``*_high`` bootstrap bounds may be NaN or absent) and ``categories``
tables (category, contribution, contribution_low, contribution_high).

Conventions: a run's "top" concepts are its ``top`` concepts with the largest
|contribution| (ties broken by concept name; concepts with contribution exactly
0 are never top). A concept absent from a table has contribution 0 there and
no confidence bounds. Keys of the input dicts keep their order (Python dicts are
ordered); that order decides pair order, column order and legend order.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from saldissect.analysis.contributions import CATEGORIES  # noqa: E402
from saldissect.report.reporting import (  # noqa: E402
    CATEGORY_COLOURS,
    interval_bars,
    save_figure,
)

STABILITY_COLUMNS = ("run_a", "run_b", "n_concepts", "kendall_tau", "p_value", "top_overlap")
PROGRESSIVE_COLUMNS = (
    "epoch",
    "concept",
    "category",
    "contribution",
    "contribution_low",
    "contribution_high",
    "normalized",
    "rank",
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", ":", "-.")


def top_concepts(table: pd.DataFrame, top: int) -> list[str]:
    """The ``top`` concepts with the largest |contribution| (non-zero only), largest first."""
    nonzero = table[table["contribution"] != 0]
    ordered = nonzero.assign(_abs=nonzero["contribution"].abs()).sort_values(
        ["_abs", "concept"], ascending=[False, True]
    )
    return list(ordered["concept"].head(top))


def _lookup(table: pd.DataFrame, concepts: list[str], column: str = "contribution") -> np.ndarray:
    """``column`` of ``table`` for ``concepts``; 0 for contributions of absent concepts,
    NaN for anything else that is absent (e.g. confidence bounds)."""
    if column not in table.columns:
        return np.full(len(concepts), np.nan)
    values = table.set_index("concept")[column].astype(float).reindex(concepts)
    return (values.fillna(0.0) if column == "contribution" else values).to_numpy()


def rank_stability(tables: dict[str, pd.DataFrame], *, top: int = 10) -> pd.DataFrame:
    """Kendall tau-b between every pair of runs (in key order) on the union of their top
    concepts, plus the overlap |top_a & top_b| / ``top`` of their top sets."""
    if len(tables) < 2:
        raise ValueError(f"rank_stability needs at least 2 runs, got {len(tables)}")
    rows = []
    for run_a, run_b in combinations(tables, 2):
        top_a, top_b = top_concepts(tables[run_a], top), top_concepts(tables[run_b], top)
        union = top_a + [c for c in top_b if c not in set(top_a)]
        tau, p = stats.kendalltau(_lookup(tables[run_a], union), _lookup(tables[run_b], union))
        rows.append(
            (run_a, run_b, len(union), float(tau), float(p), len(set(top_a) & set(top_b)) / top)
        )
    return pd.DataFrame(rows, columns=list(STABILITY_COLUMNS))


def summarise_stability(pairs: pd.DataFrame) -> dict:
    """Number of pairs and mean, min and max Kendall tau (NaN taus ignored)."""
    tau = pairs["kendall_tau"].astype(float)
    return {
        "n_pairs": len(pairs),
        "mean_kendall_tau": float(tau.mean()),
        "min_kendall_tau": float(tau.min()),
        "max_kendall_tau": float(tau.max()),
    }


def progressive_table(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Long table of every concept at every phase-one epoch, sorted by epoch then concept.
    Missing confidence-bound columns are NaN."""
    frames = [
        table.reindex(columns=list(PROGRESSIVE_COLUMNS[1:])).assign(epoch=int(epoch))
        for epoch, table in tables.items()
    ]
    long = pd.concat(frames, ignore_index=True)[list(PROGRESSIVE_COLUMNS)]
    return long.sort_values(["epoch", "concept"]).reset_index(drop=True)


def _styles(categories: list[str]) -> list[dict]:
    """Colour by category; marker and line style cycle within a category."""
    seen: dict[str, int] = {}
    styles = []
    for category in categories:
        index = seen.get(category, 0)
        seen[category] = index + 1
        styles.append(
            {
                "color": CATEGORY_COLOURS.get(category, "grey"),
                "marker": MARKERS[index % len(MARKERS)],
                "linestyle": LINESTYLES[index % len(LINESTYLES)],
            }
        )
    return styles


def _band(ax, x: np.ndarray, low: np.ndarray, high: np.ndarray, colour) -> None:
    """Shade low..high over runs of consecutive finite points; a lone finite point gets
    an error bar instead (a band over one x would be invisible)."""
    finite = np.isfinite(low) & np.isfinite(high)
    start = None
    for i, ok in enumerate(np.append(finite, False)):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            span = slice(start, i)
            if i - start > 1:
                ax.fill_between(x[span], low[span], high[span], color=colour, alpha=0.15, lw=0)
            else:
                mid = (low[start] + high[start]) / 2
                ax.errorbar(
                    x[start], mid, yerr=(high[start] - low[start]) / 2, color=colour, capsize=3
                )
            start = None


def plot_progressive(table: pd.DataFrame, out: str | Path, title: str, top: int = 5) -> None:
    """Contribution against phase-one epoch for the ``top`` most positive and ``top`` most
    negative concepts at the last epoch (``table`` from :func:`progressive_table`)."""
    last = table[table["epoch"] == table["epoch"].max()]
    positive = last[last["contribution"] > 0].sort_values(
        ["contribution", "concept"], ascending=[False, True]
    )
    negative = last[last["contribution"] < 0].sort_values(["contribution", "concept"])
    chosen = pd.concat([positive.head(top), negative.head(top)])
    epochs = sorted(int(e) for e in table["epoch"].unique())
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for (concept, category), style in zip(
        zip(chosen["concept"], chosen["category"], strict=True),
        _styles(list(chosen["category"])),
        strict=True,
    ):
        rows = table[table["concept"] == concept].sort_values("epoch")
        x = rows["epoch"].to_numpy(dtype=float)
        ax.plot(x, rows["contribution"], label=f"{concept} ({category})", ms=5, **style)
        _band(
            ax,
            x,
            rows["contribution_low"].to_numpy(dtype=float),
            rows["contribution_high"].to_numpy(dtype=float),
            style["color"],
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(epochs)
    if len(epochs) == 1:
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    ax.set_xlabel("phase-one epoch")
    ax.set_ylabel("contribution to saliency")
    ax.set_title(title)
    if len(chosen):
        ax.legend(
            title="concept (category)",
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
        )
    save_figure(fig, out)


def training_data_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per category (CATEGORIES order); per dataset the columns ``<dataset>``,
    ``<dataset>_low``, ``<dataset>_high``. A missing category counts 0 with NaN bounds."""
    wide = pd.DataFrame({"category": list(CATEGORIES)})
    for dataset, table in tables.items():
        indexed = table.set_index("category").reindex(list(CATEGORIES))
        wide[dataset] = indexed["contribution"].astype(float).fillna(0.0).to_numpy()
        for bound in ("low", "high"):
            column = f"contribution_{bound}"
            wide[f"{dataset}_{bound}"] = (
                indexed[column].astype(float).to_numpy() if column in indexed.columns else np.nan
            )
    return wide


def concepts_across(tables: dict[str, pd.DataFrame], *, top: int = 10) -> pd.DataFrame:
    """Union of every table's top concepts: concept, category (from the first table holding
    the concept), then one contribution column per label (0 where absent), sorted by the
    first label's contribution descending (ties by concept name)."""
    clash = {"concept", "category"} & set(tables)
    if clash:
        raise ValueError(f"labels {sorted(clash)} clash with the concept/category columns")
    union: list[str] = []
    for table in tables.values():
        union += [c for c in top_concepts(table, top) if c not in union]
    categories = {}
    for table in tables.values():
        for concept, category in zip(table["concept"], table["category"], strict=True):
            categories.setdefault(concept, category)
    wide = pd.DataFrame({"concept": union, "category": [categories[c] for c in union]})
    for label, table in tables.items():
        wide[label] = _lookup(table, union)
    if not tables:
        return wide
    first = next(iter(tables))
    return wide.sort_values([first, "concept"], ascending=[False, True]).reset_index(drop=True)


def plot_training_data(tables: dict[str, pd.DataFrame], out: str | Path, title: str) -> None:
    """Category contributions, one bar per training dataset side by side in each category,
    with confidence intervals where known."""
    wide = training_data_table(tables)
    x = np.arange(len(wide))
    width = 0.8 / max(len(tables), 1)
    colours = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(max(7.5, 0.25 * len(x) * len(tables) + 3), 4.2))
    for i, dataset in enumerate(tables):
        offset = x - 0.4 + width * (i + 0.5)
        value = wide[dataset].to_numpy(dtype=float)
        colour = colours[i % len(colours)]
        ax.bar(offset, value, width=width, color=colour, label=dataset)
        low, high = wide[f"{dataset}_low"], wide[f"{dataset}_high"]
        interval_bars(ax, offset, value, low, high, horizontal=False)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, wide["category"], rotation=45, ha="right")
    ax.set_xlabel("category")
    ax.set_ylabel("normalised category contribution")
    ax.set_title(title)
    ax.legend(title="training data", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, out)


def plot_replicates(
    tables: dict[str, pd.DataFrame], out: str | Path, title: str, top: int = 10
) -> None:
    """Dot plot of the union of the runs' top concepts (rows, ordered by the first run's
    contribution), one dot per run with its confidence interval where known."""
    wide = concepts_across(tables, top=top)
    y = np.arange(len(wide))
    step = 0.7 / max(len(tables), 1)
    colours = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.3 * len(wide) * max(1, len(tables) / 3) + 1.5)))
    concepts = list(wide["concept"])
    for i, (label, table) in enumerate(tables.items()):
        offset = y + (i - (len(tables) - 1) / 2) * step
        value = wide[label].to_numpy(dtype=float)
        colour = colours[i % len(colours)]
        low = _lookup(table, concepts, "contribution_low")
        high = _lookup(table, concepts, "contribution_high")
        interval_bars(ax, offset, value, low, high, horizontal=True, colour=colour)
        ax.scatter(
            value,
            offset,
            color=colour,
            marker=MARKERS[i % len(MARKERS)],
            s=22,
            label=label,
            zorder=3,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{c} ({k})" for c, k in zip(concepts, wide["category"], strict=True)])
    ax.set_ylim(len(wide) - 0.5, -0.5)
    ax.set_xlabel("contribution to saliency")
    ax.set_title(title)
    ax.legend(title="run", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, out)
