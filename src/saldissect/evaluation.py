"""Evaluation on the validation split (METHOD.md 7).

Predictions are resized to each image's own size, optionally multiplied by a
Gaussian centre bias, and scored per image with `saldissect.metrics`; the
table holds the mean over images; the per-image scores are kept too (they
are what the failure analysis ranks). Shuffled AUC draws its negatives from the
fixations of ``sauc_others`` other validation images (chosen with a fixed seed).
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from saldissect import metrics
from saldissect.data import ImageDataset, fixation_map, load_fixations, read_saliency_map
from saldissect.models import SaliencyModel


@torch.no_grad()
def predict(
    model: SaliencyModel,
    images: pd.DataFrame,
    size: tuple[int, int],
    *,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> list[np.ndarray]:
    """Saliency predictions at each image's own size."""
    model.eval()
    loader = DataLoader(ImageDataset(images, size), batch_size=batch_size, num_workers=num_workers)
    out: list[np.ndarray] = []
    heights, widths = images["height"].to_numpy(), images["width"].to_numpy()
    for batch in tqdm(loader, desc=f"predict ({model.head})", disable=None):
        saliency = model(batch["image"].to(device))["saliency"][:, 0].float().cpu().numpy()
        for index, pred in zip(batch["index"].numpy(), saliency, strict=True):
            out.append(
                cv2.resize(
                    pred, (int(widths[index]), int(heights[index])), interpolation=cv2.INTER_LINEAR
                )
            )
    return out


def score(
    predictions: dict[str, list[np.ndarray]],
    val: pd.DataFrame,
    *,
    center_bias_sigma: float | None,
    sauc_others: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean of every metric per variant (columns variant, metric, value, n_images)
    and every image's scores (variant, image_id, metric, value)."""
    val = val.reset_index(drop=True)
    gts, fixations = [], []
    for row in val.itertuples():
        gts.append(read_saliency_map(row.map_path))
        points = load_fixations(row.fixation_path, int(row.height), int(row.width))
        fixations.append(points)
    # Negatives for shuffled AUC and the centre bias: drawn once per image, the
    # same for every variant, so variants are scored on identical references.
    rng = np.random.default_rng(seed)
    others, biases = [], []
    for i, gt in enumerate(gts):
        height, width = gt.shape
        other_map = np.zeros((height, width), np.float32)
        for j in [j for j in rng.permutation(len(val)) if j != i][:sauc_others]:
            scale = np.array([height / val.at[j, "height"], width / val.at[j, "width"]])
            scaled = np.minimum((fixations[j] * scale).astype(int), [height - 1, width - 1])
            other_map[scaled[:, 0], scaled[:, 1]] = 1.0
        others.append(other_map)
        biases.append(
            metrics.center_bias(height, width, center_bias_sigma) if center_bias_sigma else 1.0
        )
    rows, image_rows = [], []
    for variant, preds in predictions.items():
        per_image: dict[str, list[float]] = {m: [] for m in metrics.METRICS}
        for pred, gt, points, other_map, bias in zip(
            preds, gts, fixations, others, biases, strict=True
        ):
            height, width = gt.shape
            result = metrics.score_image(
                pred * bias, gt, fixation_map(points, height, width), other_map
            )
            for metric, value in result.items():
                per_image[metric].append(value)
        image_rows.append(
            pd.DataFrame(per_image)
            .assign(image_id=val["image_id"].to_numpy())
            .melt(id_vars="image_id", var_name="metric", value_name="value")
            .assign(variant=variant)[["variant", "image_id", "metric", "value"]]
        )
        for metric, values in per_image.items():
            rows.append(
                {
                    "variant": variant,
                    "metric": metric,
                    "value": float(np.mean(values)),
                    "n_images": len(values),
                }
            )
    means = pd.DataFrame(rows, columns=["variant", "metric", "value", "n_images"])
    return means, pd.concat(image_rows, ignore_index=True)
