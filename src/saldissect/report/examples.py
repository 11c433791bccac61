"""The examples figure (`plot_examples`), drawn from the Parquet that
`saldissect.analysis.examples.collect_examples` writes: image, the basis's
probability map overlaid, the region above the basis threshold outlined in
white and the concept's boxes."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from saldissect.core.errors import MissingFileError  # noqa: E402
from saldissect.core.io import SCHEMAS  # noqa: E402
from saldissect.report.reporting import read_rgb, save_figure  # noqa: E402

EXAMPLE_COLUMNS = SCHEMAS["examples"]
MAP_CMAP = "jet"
MAP_ALPHA = 0.5
BOX_COLOUR = "#39ff14"  # bright green, visible on the jet colours and on photos


def _label(row: pd.Series) -> str:
    return f"{row['concept']} ({int(row['rank']):+d}, basis {int(row['basis'])})"


def plot_examples(
    examples: pd.DataFrame, concepts: pd.DataFrame, out: str | Path, title: str
) -> None:
    """One row per concept (positive ranks first), one panel per image.

    Each panel: the image, the basis probability map upsampled (bilinear) to
    the image and overlaid, the region where it exceeds the basis threshold
    outlined in white, and the concept's boxes in that image in green.
    """
    if not len(examples):
        fig, ax = plt.subplots(figsize=(5.0, 2.0))
        ax.text(0.5, 0.5, "no ranked concepts", ha="center", va="center", fontsize=12)
        ax.set_title(title)
        ax.axis("off")
        save_figure(fig, out)
        return
    missing = sorted({p for p in examples["image_path"] if not Path(p).is_file()})
    if missing:
        raise MissingFileError(f"example image(s) missing: {', '.join(map(str, missing))}")

    table = examples.assign(
        _negative=examples["rank"] < 0,
        _order=examples["rank"].abs(),
        _iou=-examples["iou"],
    ).sort_values(["_negative", "_order", "_iou"], kind="stable")
    groups = [g for _, g in table.groupby(["_negative", "_order"], sort=True)]
    n_rows, n_cols = len(groups), max(len(g) for g in groups)

    fig = plt.figure(figsize=(2.3 * n_cols + 1.6, 2.0 * n_rows + 0.9))
    grid = fig.add_gridspec(n_rows, n_cols + 1, width_ratios=[1.0] * n_cols + [0.06])
    norm = Normalize(0.0, 1.0)
    for r, group in enumerate(groups):
        for c in range(n_cols):
            ax = fig.add_subplot(grid[r, c])
            if c >= len(group):
                ax.axis("off")
                continue
            row = group.iloc[c]
            image = read_rgb(row["image_path"])
            height, width = image.shape[:2]
            small = np.asarray(row["map"], np.float32).reshape(
                int(row["map_height"]), int(row["map_width"])
            )
            prob = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
            ax.imshow(image)
            threshold = float(row["threshold"])
            # opaque from the threshold up, fading out below it: the image stays readable
            fade = np.clip(prob / max(threshold, 1e-6), 0.0, 1.0)
            ax.imshow(prob, cmap=MAP_CMAP, norm=norm, alpha=MAP_ALPHA * fade)
            if prob.min() < threshold < prob.max():
                ax.contour(prob, levels=[threshold], colors="white", linewidths=1.2)
            boxes = concepts[
                (concepts["image_id"] == row["image_id"]) & (concepts["concept"] == row["concept"])
            ]
            for box in boxes.itertuples():
                ax.add_patch(
                    Rectangle(
                        (box.x, box.y), box.w, box.h, fill=False, edgecolor=BOX_COLOUR, lw=1.5
                    )
                )
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"IoU {row['iou']:.2f}", fontsize=9)
            if c == 0:
                ax.set_ylabel(_label(group.iloc[0]), fontsize=9)
    cax = fig.add_subplot(grid[:, -1])
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=MAP_CMAP), cax=cax)
    bar.set_label("basis probability", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"{title}\nwhite: basis region above threshold; green: concept boxes", fontsize=10)
    save_figure(fig, out)
