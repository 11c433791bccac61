"""Datasets written by pysaliency itself, from a synthetic world's SALICON files.

Each image's fixations, read back from its ``.mat`` by the workflow's reader,
become one fixation train per observer (pysaliency's `FixationTrains`, what
its dataset loaders return for MIT1003, CAT2000, SALICON...); the images
become `FileStimuli`; both are written with pysaliency's ``to_hdf5``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysaliency
import scipy.io

# PyPI's pysaliency (0.2.22) writes its HDF5 attributes with np.string_, which
# NumPy 2 names np.bytes_ only (the same type); its readers need neither.
if "string_" not in vars(np):
    np.string_ = np.bytes_


def observer_trains(mat: Path) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(x, y, observer) of each observer's fixations, 0-based pixels (SALICON's are 1-based)."""
    gaze = np.atleast_1d(scipy.io.loadmat(mat, squeeze_me=True, struct_as_record=False)["gaze"])
    trains = []
    for observer, entry in enumerate(gaze):
        xy = np.asarray(entry.fixations, np.float64).reshape(-1, 2) - 1
        # the pixel's centre: pysaliency's x_int is the pixel a fixation falls in
        trains.append((xy[:, 0] + 0.5, xy[:, 1] + 0.5, observer))
    return trains


def write_pysaliency(salicon: Path, out: Path, splits=("train", "val")) -> tuple[Path, Path]:
    """The images of ``splits`` as one pysaliency dataset: stimuli and fixations HDF5 files."""
    out.mkdir(parents=True, exist_ok=True)
    images = [p for split in splits for p in sorted((salicon / "images" / split).glob("*.jpg"))]
    stimuli = pysaliency.FileStimuli([str(p) for p in images])
    xs, ys, ts, ns, subjects = [], [], [], [], []
    for n, image in enumerate(images):
        mat = salicon / "fixations" / image.parent.name / f"{image.stem}.mat"
        for x, y, observer in observer_trains(mat):
            xs.append(x)
            ys.append(y)
            ts.append(np.arange(len(x), dtype=float))
            ns.append(n)
            subjects.append(observer)
    fixations = pysaliency.FixationTrains.from_fixation_trains(xs, ys, ts, ns, subjects)
    name = "_".join(splits)
    stimuli_path, fixations_path = out / f"stimuli_{name}.hdf5", out / f"fixations_{name}.hdf5"
    stimuli.to_hdf5(str(stimuli_path))
    fixations.to_hdf5(str(fixations_path))
    return stimuli_path, fixations_path
