"""Tables and figures, drawn from Parquet artifacts only (never rerunning a model)."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from saldissect.analysis.contributions import CATEGORIES, heatmap_concepts  # noqa: E402
from saldissect.core.errors import MissingFileError  # noqa: E402
from saldissect.core.io import read_parquet, write_atomic  # noqa: E402

CATEGORY_COLOURS = dict(
    zip(CATEGORIES, plt.get_cmap("tab20").colors[: len(CATEGORIES)], strict=True)
)


def _model_name(path: str | Path) -> str:
    return Path(path).parent.name


def metric_intervals(
    scores: pd.DataFrame,
    *,
    confidence: float = 0.95,
    replicates: int = 1000,
    seed: int = 0,
    per_fixation: frozenset[str] | set[str] = frozenset(),
) -> pd.DataFrame:
    """Percentile bootstrap interval of each metric's mean over the validation images.

    ``scores`` holds per-image scores (variant, image_id, metric, value,
    n_fixations); images are resampled with replacement ``replicates`` times
    (the same draws for every variant and metric, so variants are compared on
    identical resamples). The metrics of ``per_fixation`` are averaged as the
    metrics table does, each image weighted by its fixations.
    Returns variant, metric, low, high.
    """
    rows = []
    images = sorted(set(scores["image_id"]))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(images), size=(replicates, len(images)))
    alpha = (1.0 - confidence) / 2.0
    for (variant, metric), frame in scores.groupby(["variant", "metric"], sort=True):
        frame = frame.set_index("image_id").reindex(images)
        values = frame["value"].to_numpy(float)
        if metric in per_fixation:
            weights = frame["n_fixations"].to_numpy(float)[draws]
            means = (values[draws] * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1)
        else:
            means = values[draws].mean(axis=1)
        low, high = np.quantile(means, [alpha, 1.0 - alpha])
        rows.append({"variant": variant, "metric": metric, "low": low, "high": high})
    return pd.DataFrame(rows, columns=["variant", "metric", "low", "high"])


def averaging_note(paths: list[str]) -> str:
    """One line saying how each metric column of the metrics table is averaged."""
    frame = pd.concat([read_parquet(p, "metrics") for p in paths])
    by = frame.groupby("averaging")["metric"].agg(lambda m: ", ".join(sorted(set(m))))
    words = {
        "image": "per image",
        "fixation": "per fixation (each image weighted by its fixations)",
    }
    parts = [f"{words[kind]}: {metrics}" for kind, metrics in by.items()]
    note = "Averaged " + "; ".join(parts) + " (evaluation.average)."
    if "ig" in set(frame["metric"]):
        note += " ig: bits per fixation over the centre-bias baseline (docs/method.md 7)."
    return note


def metrics_table(
    paths: list[str], scores: list[str] | None = None, *, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """One row per (model, variant), one column per metric; with ``scores`` (each
    model's image_scores.parquet) also ``<metric>_low`` and ``<metric>_high``, the
    bootstrap interval of the mean over validation images."""
    frames = [read_parquet(p, "metrics").assign(model=_model_name(p)) for p in paths]
    per_fixation = {
        model: set(frame.loc[frame["averaging"] == "fixation", "metric"])
        for model, frame in zip(map(_model_name, paths), frames, strict=True)
    }
    table = (
        pd.concat(frames)
        .pivot_table(index=["model", "variant", "n_images"], columns="metric", values="value")
        .reset_index()
    )
    table.columns.name = None
    if not scores:
        return table
    metrics = [c for c in table.columns if c not in ("model", "variant", "n_images")]
    bounds = pd.concat(
        [
            metric_intervals(
                read_parquet(p, "image_scores"),
                confidence=confidence,
                seed=seed,
                per_fixation=per_fixation.get(_model_name(p), set()),
            ).assign(model=_model_name(p))
            for p in scores
        ]
    )
    for bound in ("low", "high"):
        wide = bounds.pivot_table(index=["model", "variant"], columns="metric", values=bound)
        wide.columns = [f"{m}_{bound}" for m in wide.columns]
        table = table.merge(wide.reset_index(), on=["model", "variant"], how="left")
    order = ["model", "variant", "n_images"]
    order += [c for m in metrics for c in (m, f"{m}_low", f"{m}_high")]
    return table[order]


def with_brackets(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """For Markdown: every ``x`` with ``x_low`` and ``x_high`` becomes "x [low, high]"."""
    out = table.copy()
    for column in list(out.columns):
        if f"{column}_low" in out.columns and f"{column}_high" in out.columns:
            out[column] = [
                f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
                for v, lo, hi in zip(
                    out[column], out[f"{column}_low"], out[f"{column}_high"], strict=True
                )
            ]
            out = out.drop(columns=[f"{column}_low", f"{column}_high"])
    return out


def top_semantics_table(paths: list[str]) -> pd.DataFrame:
    """Ranked positive and negative concepts per model."""
    frames = [read_parquet(p, "contributions").assign(model=_model_name(p)) for p in paths]
    table = pd.concat(frames)
    table = table[table["rank"] != 0]
    table = table.assign(
        sign=table["rank"].gt(0).map({True: "positive", False: "negative"}),
        order=table["rank"].abs(),
    )
    return (
        table.sort_values(["model", "sign", "order"], ascending=[True, False, True])[
            [
                "model",
                "sign",
                "order",
                "concept",
                "category",
                "contribution",
                "contribution_low",
                "contribution_high",
                "normalized",
                "normalized_low",
                "normalized_high",
                "contrast",
            ]
        ]
        .rename(columns={"order": "rank"})
        .reset_index(drop=True)
    )


def categories_table(paths: list[str], intervals: bool = True) -> pd.DataFrame:
    """One row per category; per model its score and (``intervals``) the bootstrap
    bounds ``<model>_low``, ``<model>_high``."""
    frames = [read_parquet(p, "categories").assign(model=_model_name(p)) for p in paths]
    long = pd.concat(frames)
    table = pd.DataFrame({"category": list(CATEGORIES)})
    for model, frame in long.groupby("model", sort=True):
        frame = frame.set_index("category").reindex(CATEGORIES)
        table[model] = frame["contribution"].to_numpy()
        if intervals:
            table[f"{model}_low"] = frame["contribution_low"].to_numpy()
            table[f"{model}_high"] = frame["contribution_high"].to_numpy()
    return table


def interval_bars(ax, position, value, low, high, *, horizontal: bool, colour="black") -> None:
    """Whiskers from ``low`` to ``high`` around ``value`` at ``position`` where both
    bounds are known (a bound on the wrong side of the value draws as 0)."""
    position, value = np.asarray(position, float), np.asarray(value, float)
    low, high = np.asarray(low, float), np.asarray(high, float)
    known = np.isfinite(low) & np.isfinite(high)
    if not known.any():
        return
    spread = np.vstack([(value - low).clip(min=0), (high - value).clip(min=0)])[:, known]
    x, y = (value, position) if horizontal else (position, value)
    ax.errorbar(
        x[known],
        y[known],
        **{"xerr" if horizontal else "yerr": spread},
        fmt="none",
        ecolor=colour,
        elinewidth=0.8,
        capsize=2,
    )


def _error_bars(ax, table: pd.DataFrame, column: str, *, horizontal: bool) -> None:
    """`interval_bars` of ``column`` from ``<column>_low`` to ``<column>_high``, at
    the rows' category positions (``position`` when given, else 0..n-1)."""
    where = table["position"] if "position" in table else np.arange(len(table), dtype=float)
    interval_bars(
        ax,
        where,
        table[column],
        table[f"{column}_low"],
        table[f"{column}_high"],
        horizontal=horizontal,
    )


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB (the figures that show images: examples, worst/best)."""
    if not Path(path).is_file():
        raise MissingFileError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MissingFileError(f"image unreadable by OpenCV: {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def save_figure(fig, path: str | Path) -> None:
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    plt.close(fig)


def plot_top_semantics(contributions: str | Path, out: str | Path, title: str) -> None:
    """Horizontal bars of the ranked positive and negative concepts, coloured by category."""
    table = read_parquet(contributions, "contributions")
    table = table[table["rank"] != 0].sort_values("normalized")
    fig, ax = plt.subplots(figsize=(6.5, max(3.0, 0.24 * len(table) + 1.2)))
    colours = [CATEGORY_COLOURS.get(c, "grey") for c in table["category"]]
    ax.barh(table["concept"], table["normalized"], color=colours)
    _error_bars(ax, table, "normalized", horizontal=True)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("normalised contribution to saliency (bars: 95% bootstrap interval)")
    ax.set_title(title)
    present = [c for c in CATEGORIES if c in set(table["category"])]
    handles = [plt.Rectangle((0, 0), 1, 1, color=CATEGORY_COLOURS[c]) for c in present]
    ax.legend(handles, present, title="category", fontsize=7, loc="lower right")
    save_figure(fig, out)


def plot_categories(paths: list[str], out: str | Path, title: str) -> None:
    """Category contributions, models side by side."""
    full = categories_table(paths)
    models = list(categories_table(paths, intervals=False).columns[1:])
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(models)
    x = np.arange(len(full))
    for i, model in enumerate(models):
        offset = x - 0.4 + width * (i + 0.5)
        ax.bar(offset, full[model], width, label=model)
        bounds = full[[model, f"{model}_low", f"{model}_high"]].rename(
            columns={model: "value", f"{model}_low": "value_low", f"{model}_high": "value_high"}
        )
        _error_bars(ax, bounds.assign(position=offset), "value", horizontal=False)
    ax.set_xticks(x, full["category"], rotation=30, ha="right")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("normalised contribution")
    ax.set_xlabel("category")
    ax.set_title(title)
    ax.legend(title="model", fontsize=8)
    save_figure(fig, out)


def plot_interactions(
    semantic: str | Path, contributions: str | Path, out: str | Path, title: str, top: int = 20
) -> None:
    """Two heatmaps over the ``top`` most positive and ``top`` most negative concepts,
    rows sources, columns targets: the semantic interactions S (where attention
    comes from and goes to), each row scaled by its largest entry, and the pair
    effects' z (how much more salient the source is when the target is there,
    docs/method.md 6), blank where a pair has no value."""
    table = read_parquet(contributions, "contributions")
    concepts = heatmap_concepts(table, top)
    # only the shown pairs: the table has a row per pair of the whole vocabulary
    shown = [("source", "in", concepts), ("target", "in", concepts)] if concepts else None
    pairs = read_parquet(semantic, "semantic_interactions", filters=shown)

    def square(column: str) -> pd.DataFrame:
        matrix = pairs.pivot(index="source", columns="target", values=column)
        return matrix.reindex(index=concepts, columns=concepts)

    matrix = square("weight").fillna(0.0)
    peak = matrix.max(axis=1).where(lambda v: v > 0, 1.0)
    scaled = matrix.div(peak, axis=0)
    z = square("pair_z").to_numpy()
    n_positive = int(table["rank"].between(1, top).sum())
    side = max(4.5, 0.32 * len(concepts) + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * (side + 1.2), side))
    limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    panels = (
        (axes[0], scaled.to_numpy(), "viridis", (0, 1), title, "S, each row / its max"),
        (
            axes[1],
            np.ma.masked_invalid(z),
            "RdBu_r",
            (-limit, limit),
            "pair effects: the source's saliency with the target there",
            "Welch z: source's saliency with the target present vs absent",
        ),
    )
    for ax, values, cmap, (low, high), name, label in panels:
        image = ax.imshow(values, cmap=cmap, vmin=low, vmax=high, aspect="equal")
        ax.set_xticks(range(len(concepts)), concepts, rotation=90, fontsize=8)
        ax.set_yticks(range(len(concepts)), concepts, fontsize=8)
        if 0 < n_positive < len(concepts):
            for draw in (ax.axhline, ax.axvline):
                draw(n_positive - 0.5, color="white" if cmap == "viridis" else "grey", lw=1.5)
        ax.set_xlabel(f"target (attended); top {n_positive} positive, then negative concepts")
        ax.set_ylabel("source (attending)")
        ax.set_title(name, fontsize=10)
        colour_bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        colour_bar.set_label(label, fontsize=8)
    save_figure(fig, out)
