"""Evaluation on the validation split (docs/method.md 7), streamed batch by batch.

Each batch of validation images goes through every variant's model; each
prediction is resized to its image's own size, optionally multiplied by a
Gaussian centre bias, and scored with `saldissect.core.metrics` against that
image's map and fixations, which are then dropped. Memory is one batch of
images and maps plus a fixed pool of other images' fixations, whatever the
number of validation images.

Shuffled AUC's negatives: the fixated pixels of ``sauc_others`` other images
drawn (per image, with a fixed seed) from a pool of ``sauc_pool`` validation
images chosen once with the same seed; their fixations are kept as fractions
of their image's sides and scaled to each scored image. The pool, and so every
image's negatives, does not depend on the batch size or on the variant.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from saldissect.core import metrics
from saldissect.data.datasets import fixation_map, load_fixations, load_image, read_saliency_map
from saldissect.models.networks import SaliencyModel

COLUMNS = ["variant", "metric", "value", "n_images", "averaging"]
IMAGE_COLUMNS = ["variant", "image_id", "metric", "value", "n_fixations"]


class EvaluationDataset(Dataset):
    """One validation image at the model's input size, with its full-size map and fixations."""

    def __init__(self, table: pd.DataFrame, size: tuple[int, int]) -> None:
        self.table = table.reset_index(drop=True)
        self.size = tuple(size)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict:
        row = self.table.iloc[index]
        height, width = int(row.height), int(row.width)
        return {
            "image": torch.from_numpy(load_image(row.image_path, self.size)),
            "map": read_saliency_map(row.map_path),
            "points": load_fixations(row.fixation_path, height, width),
            "index": index,
        }


def _collate(samples: list[dict]) -> dict:
    return {
        "image": torch.stack([s["image"] for s in samples]),
        "map": [s["map"] for s in samples],
        "points": [s["points"] for s in samples],
        "index": [s["index"] for s in samples],
    }


class NegativePool:
    """Fixations of a fixed pool of validation images, the negatives of shuffled AUC."""

    def __init__(self, val: pd.DataFrame, *, size: int, others: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.members = np.sort(rng.permutation(len(val))[: max(size, others + 1)])
        self.points = []
        for index in self.members:
            row = val.iloc[int(index)]
            height, width = int(row.height), int(row.width)
            points = load_fixations(row.fixation_path, height, width).astype(np.float64)
            self.points.append(points / np.array([height, width]))
        self.others, self.seed = others, seed
        self._totals: dict[tuple[int, int], np.ndarray] = {}

    def _pixels(self, member: int, height: int, width: int) -> np.ndarray:
        """Pool member ``member``'s fixations as (row, col) pixels of a height x width image."""
        points = self.points[member] * [height, width]
        return np.minimum(points.astype(np.int64), [height - 1, width - 1])

    def _counts(self, height: int, width: int, member: int) -> np.ndarray:
        """The fixations of pool member ``member`` counted on a height x width grid."""
        scaled = self._pixels(member, height, width)
        counts = np.zeros((height, width), np.float64)
        np.add.at(counts, (scaled[:, 0], scaled[:, 1]), 1.0)
        return counts

    def baseline(self, index: int, height: int, width: int, bandwidth: float) -> np.ndarray:
        """The centre-bias baseline of image ``index``: every pool image's fixations
        but its own, at this size, blurred by a Gaussian of ``bandwidth`` x each side
        (a leave-one-out kernel density, the MIT/Tuebingen benchmark's baseline)."""
        key = (height, width)
        if key not in self._totals:
            self._totals[key] = sum(
                self._counts(height, width, j) for j in range(len(self.members))
            )
        counts = self._totals[key]
        own = np.flatnonzero(self.members == index)
        if own.size:
            counts = counts - self._counts(height, width, int(own[0]))
        return cv2.GaussianBlur(counts, (0, 0), bandwidth * width, sigmaY=bandwidth * height)

    def negatives(self, index: int, height: int, width: int) -> np.ndarray:
        """Binary map of the fixations of ``others`` pool images other than ``index``."""
        order = np.random.default_rng([self.seed, index]).permutation(len(self.members))
        chosen = order[self.members[order] != index][: self.others]
        scaled = np.concatenate([self._pixels(j, height, width) for j in chosen])
        out = np.zeros((height, width), np.float32)
        out[scaled[:, 0], scaled[:, 1]] = 1.0
        return out


@lru_cache(maxsize=8)
def _center_bias(height: int, width: int, sigma: float) -> np.ndarray:
    return metrics.center_bias(height, width, sigma)


@torch.no_grad()
def evaluate(
    models: dict[str, SaliencyModel],
    val: pd.DataFrame,
    size: tuple[int, int],
    *,
    batch_size: int,
    device: torch.device,
    center_bias_sigma: float | None,
    sauc_others: int,
    sauc_pool: int,
    seed: int,
    num_workers: int = 0,
    average: str = "image",
    information_gain: bool = True,
    ig_bandwidth: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean of every metric per variant (columns variant, metric, value, n_images,
    averaging) and every image's scores (variant, image_id, metric, value,
    n_fixations).

    ``models`` maps a variant name to its model; all of them score the same
    images against identical references (maps, fixations, negatives, bias,
    the centre-bias baseline of information gain). ``average`` ``fixation``
    weights each image's fixation-based scores (`metrics.FIXATION_METRICS`) by
    its number of fixations; the map-based ones are always per image.
    """
    val = val.reset_index(drop=True)
    for model in models.values():
        model.eval()
    pool = NegativePool(val, size=sauc_pool, others=sauc_others, seed=seed)
    loader = DataLoader(
        EvaluationDataset(val, size),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
    )
    # per-image scores are the output (the failure analysis ranks them): a
    # float per image, variant and metric, in validation order
    names = [m for m in metrics.METRICS if m != "ig" or information_gain]
    values = {(v, m): np.zeros(len(val)) for v in models for m in names}
    n_fixations = np.zeros(len(val), np.int64)
    desc = f"evaluate ({', '.join(models)})"
    for batch in tqdm(loader, desc=desc, disable=None):
        images = batch["image"].to(device)
        saliency = {
            variant: model(images)["saliency"][:, 0].float().cpu().numpy()
            for variant, model in models.items()
        }
        for b, index in enumerate(batch["index"]):
            gt = batch["map"][b]
            height, width = gt.shape
            points = batch["points"][b]
            n_fixations[index] = len(points)
            fixations = fixation_map(points, height, width)
            others = pool.negatives(index, height, width)
            baseline = (
                pool.baseline(index, height, width, ig_bandwidth) if information_gain else None
            )
            bias = _center_bias(height, width, center_bias_sigma) if center_bias_sigma else 1.0
            for variant, preds in saliency.items():
                pred = cv2.resize(preds[b], (width, height), interpolation=cv2.INTER_LINEAR)
                scores = metrics.score_image(
                    pred * bias, gt, fixations, others, names, points=points, baseline=baseline
                )
                for metric, value in scores.items():
                    values[variant, metric][index] = value
    averaging = {m: averaging_of(m, average) for m in names}
    means = pd.DataFrame(
        [
            {
                "variant": v,
                "metric": m,
                "value": mean(x, n_fixations, averaging[m]),
                "n_images": len(x),
                "averaging": averaging[m],
            }
            for (v, m), x in values.items()
        ],
        columns=COLUMNS,
    )
    images = pd.concat(
        [
            pd.DataFrame(
                {
                    "variant": v,
                    "image_id": val["image_id"].to_numpy(),
                    "metric": m,
                    "value": x,
                    "n_fixations": n_fixations,
                }
            )
            for (v, m), x in values.items()
        ],
        ignore_index=True,
    )[IMAGE_COLUMNS]
    return means, images


def averaging_of(metric: str, average: str) -> str:
    """How ``metric``'s mean over images is taken under ``evaluation.average``."""
    return "fixation" if average == "fixation" and metric in metrics.FIXATION_METRICS else "image"


def mean(values: np.ndarray, n_fixations: np.ndarray, averaging: str) -> float:
    """The mean of per-image ``values``: plain, or weighted by each image's fixations."""
    if averaging == "fixation" and n_fixations.sum() > 0:
        return float(np.average(values, weights=n_fixations))
    return float(values.mean())
