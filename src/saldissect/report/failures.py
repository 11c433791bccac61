"""The failure figures (`plot_failures`, `plot_worst_best`), drawn from the
Parquet that `saldissect.analysis.failures` computes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from saldissect.analysis.contributions import CATEGORIES  # noqa: E402
from saldissect.analysis.failures import GROUP_COLUMNS, require_columns  # noqa: E402
from saldissect.report.reporting import CATEGORY_COLOURS, read_rgb, save_figure  # noqa: E402

FOREST_XLABEL = "odds ratio, worst vs best images (log scale)"
EMPTY_MESSAGE = "no concepts in the worst or best images"


def forest_rows(table: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` highest and ``top`` lowest odds ratios without duplicates,
    highest first (the order of the forest plot, top to bottom)."""
    ranked = table.sort_values(
        ["odds_ratio", "concept"], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)
    if 2 * top >= len(ranked):
        return ranked
    return pd.concat([ranked.head(top), ranked.tail(top)], ignore_index=True)


def forest_size(n_rows: int) -> tuple[float, float]:
    """Figure size (inches) of a forest plot with ``n_rows`` concepts."""
    return 7.0, max(3.0, 0.28 * n_rows + 1.4)


def plot_failures(table: pd.DataFrame, out: str | Path, title: str, top: int = 10) -> None:
    """Forest plot of the ``top`` highest and ``top`` lowest odds ratios: a point per
    concept at its odds ratio with its confidence interval, log x axis, a line at 1,
    labels "concept (n_worst/n_worst_images vs n_best/n_best_images)", coloured by
    category."""
    rows = forest_rows(table, top)
    fig, ax = plt.subplots(figsize=forest_size(len(rows)))
    ax.set_title(title)
    if rows.empty:
        ax.text(0.5, 0.5, EMPTY_MESSAGE, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        save_figure(fig, out)
        return
    y = np.arange(len(rows))[::-1]
    ratio = rows["odds_ratio"].to_numpy(dtype=float)
    errors = np.stack([ratio - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - ratio])
    ax.errorbar(ratio, y, xerr=errors, fmt="none", ecolor="grey", elinewidth=1.2, capsize=2)
    order = [c for c in CATEGORIES if c in set(rows["category"])]
    order += sorted(set(rows["category"]) - set(order))
    for category in order:
        mask = (rows["category"] == category).to_numpy()
        colour = CATEGORY_COLOURS.get(category, "grey")
        ax.scatter(ratio[mask], y[mask], color=colour, s=30, zorder=3, label=category)
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xscale("log")
    labels = [
        f"{r.concept} ({r.n_worst}/{r.n_worst_images} vs {r.n_best}/{r.n_best_images})"
        for r in rows.itertuples()
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(FOREST_XLABEL)
    ax.legend(title="category", fontsize=7, loc="best")
    save_figure(fig, out)


def worst_best_size(n_columns: int) -> tuple[float, float]:
    """Figure size (inches) of the worst/best grid with ``n_columns`` images per row."""
    return 2.4 * max(n_columns, 1) + 0.4, 5.2


def plot_worst_best(
    groups: pd.DataFrame, images: pd.DataFrame, out: str | Path, title: str, n: int = 4
) -> None:
    """The ``n`` worst images (top row, worst first) and ``n`` best (bottom row, best
    first), each titled with its score. ``images`` has columns image_id, image_path."""
    require_columns(groups, GROUP_COLUMNS, "groups")
    require_columns(images, ("image_id", "image_path"), "images")
    worst = groups[groups["group"] == "worst"].head(n)
    best = groups[groups["group"] == "best"].tail(n).iloc[::-1]
    paths = images.drop_duplicates("image_id").set_index("image_id")["image_path"]
    wanted = pd.concat([worst, best])["image_id"]
    missing = sorted(set(wanted) - set(paths.index), key=str)
    if missing:
        raise ValueError(f"images: no image_path for image_id {missing[:5]}")
    columns = max(len(worst), len(best), 1)
    fig, axes = plt.subplots(2, columns, figsize=worst_best_size(columns), squeeze=False)
    for row, (label, chosen) in enumerate((("worst", worst), ("best", best))):
        for column, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if column == 0:
                ax.set_ylabel(label, fontsize=12)
            if column >= len(chosen):
                continue
            record = chosen.iloc[column]
            ax.imshow(read_rgb(paths[record["image_id"]]))
            ax.set_title(f"{record['value']:.3f}", fontsize=9)
    fig.suptitle(title)
    save_figure(fig, out)
