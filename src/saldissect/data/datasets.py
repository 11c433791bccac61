"""File formats of the real layouts and the PyTorch datasets.

Indexing a dataset with every sample checked lives in `saldissect.data.inputs`.
SALICON: ``images/{split}/<name>.jpg``, ``maps/{split}/<name>.png`` and
``fixations/{split}/<name>.mat`` (2017 release: ``gaze`` struct array with
1-based ``fixations`` (x, y)) or a binary ``fixationPts`` array, or binary
fixation PNGs. Visual Genome: ``image_data.json``, ``objects.json``,
``attributes.json`` and ``images/<image_id>.jpg``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.io
import torch
from torch.utils.data import Dataset


# ---------------------------------------------------------------------- SALICON
def load_fixations(
    path: str | Path, height: int, width: int, *, keep_outside: bool = False
) -> np.ndarray:
    """Fixations as an int array of (row, col), 0-based, inside a height x width image.

    Reads the SALICON 2017 ``.mat`` (``gaze`` struct, 1-based (x, y) per
    observer; points are scaled if ``resolution`` differs), a ``.mat`` with a
    binary ``fixationPts`` map, or a binary fixation PNG. Points outside the
    image are dropped unless ``keep_outside`` (validation reports them).
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
        if "gaze" in mat:
            gaze = np.atleast_1d(mat["gaze"])
            xy = [np.asarray(g.fixations, np.float64).reshape(-1, 2) for g in gaze]
            xy = np.concatenate(xy) if xy else np.zeros((0, 2))
            res_h, res_w = np.asarray(mat.get("resolution", (height, width))).ravel()[:2]
            rows = (xy[:, 1] - 1) * height / res_h
            cols = (xy[:, 0] - 1) * width / res_w
            points = np.stack([rows, cols], axis=1).round().astype(int)
        elif "fixationPts" in mat:
            points = _points_from_map(np.asarray(mat["fixationPts"]), height, width)
        else:
            raise ValueError(f"{path}: neither a 'gaze' struct nor a 'fixationPts' map")
    else:
        binary = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if binary is None:
            raise ValueError(f"{path}: unreadable fixation image")
        points = _points_from_map(binary, height, width)
    if keep_outside:
        return points
    inside = (
        (points[:, 0] >= 0) & (points[:, 0] < height) & (points[:, 1] >= 0) & (points[:, 1] < width)
    )
    return points[inside]


def _points_from_map(binary: np.ndarray, height: int, width: int) -> np.ndarray:
    rows, cols = np.nonzero(binary)
    scale_r, scale_c = height / binary.shape[0], width / binary.shape[1]
    return np.stack([rows * scale_r, cols * scale_c], axis=1).astype(int)


def fixation_map(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Binary H x W map with ones at the fixated pixels."""
    out = np.zeros((height, width), np.float32)
    out[points[:, 0], points[:, 1]] = 1.0
    return out


def read_saliency_map(path: str | Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path}: unreadable saliency map")
    return image.astype(np.float32) / 255.0


# --------------------------------------------------------------------- datasets
def single_threaded_worker(_: int) -> None:
    """DataLoader ``worker_init_fn``: one OpenCV thread per worker (workers are the parallelism)."""
    cv2.setNumThreads(1)


def load_image(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 image resized to ``size`` (height, width), C x H x W.

    Images travel from the loader workers as bytes (4x less than float32);
    the model normalises them (`saldissect.models.networks.SaliencyModel`).
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: unreadable image")
    image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))


class SaliencyDataset(Dataset):
    """Image, saliency map and binary fixation map at the model's input size.

    With ``cache=True`` every sample is decoded once and kept in memory (for
    small datasets such as the synthetic world). ``images=False`` leaves the
    image out (stages that read P from a cache), ``maps=False`` the map and
    fixations (stages that need only the image).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        size: tuple[int, int],
        *,
        hflip: bool = False,
        cache: bool = False,
        images: bool = True,
        maps: bool = True,
    ) -> None:
        self.table = table.reset_index(drop=True)
        self.size = tuple(size)
        self.hflip = hflip
        self.images, self.maps = images, maps
        self._cache: dict[int, dict[str, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.table)

    def _load(self, index: int) -> dict[str, np.ndarray]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        row = self.table.iloc[index]
        height, width = self.size
        sample = {}
        if self.images:
            sample["image"] = load_image(row.image_path, self.size)
        if self.maps:
            smap = cv2.resize(
                read_saliency_map(row.map_path), (width, height), interpolation=cv2.INTER_AREA
            )
            points = load_fixations(row.fixation_path, int(row.height), int(row.width))
            scaled = np.stack(
                [points[:, 0] * height // int(row.height), points[:, 1] * width // int(row.width)],
                axis=1,
            )
            sample["map"] = smap[None]
            sample["fixations"] = fixation_map(scaled, height, width).astype(np.uint8)[None]
        if self._cache is not None:
            self._cache[index] = sample
        return sample

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self._load(index)
        if self.hflip and torch.rand(()) < 0.5:
            sample = {k: np.ascontiguousarray(a[..., ::-1]) for k, a in sample.items()}
        return {**{k: torch.from_numpy(a) for k, a in sample.items()}, "index": index}


class ImageDataset(Dataset):
    """Images only (probe set), at the model's input size."""

    def __init__(self, table: pd.DataFrame, size: tuple[int, int]) -> None:
        self.table = table.reset_index(drop=True)
        self.size = tuple(size)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.table.iloc[index]
        return {"image": torch.from_numpy(load_image(row.image_path, self.size)), "index": index}
