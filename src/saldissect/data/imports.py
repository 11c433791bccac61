"""Saliency datasets kept in other layouts, written into SALICON's (docs/method.md 8.6).

`prepare_data` indexes and checks one layout, SALICON's. A dataset kept in
another one is first written into it by the rule ``import_dataset``, under
``results/{dataset}/import/salicon/{images,maps,fixations}/{train,val}``:

- ``source: pysaliency``: pysaliency's own stimuli and fixations files, as
  its dataset loaders and ``to_hdf5`` write them (``FileStimuli`` or
  ``Stimuli``; ``Fixations``, ``FixationTrains`` or whatever
  ``pysaliency.read_hdf5`` of the installed version reads). pysaliency is an
  optional extra (``pip install 'saldissect[pysaliency]'``). Its datasets
  carry fixations and no maps: each map is the image's fixation counts blurred
  by a Gaussian of ``blur.sigma`` pixels, or degrees times
  ``blur.pixels_per_degree``.
- ``source: mit1003``: the MIT1003 release, ``ALLSTIMULI/<name>.jpeg`` with
  ``ALLFIXATIONMAPS/<name>_fixMap.jpg`` (the map) and ``<name>_fixPts.jpg``
  (the fixated pixels, JPEG-coded: a pixel is fixated when above half).
- ``source: cat2000``: CAT2000's ``trainSet`` (its test set has no
  fixations), ``Stimuli/<category>/<n>.jpg`` with ``FIXATIONMAPS/<category>/<n>.jpg``
  and ``FIXATIONLOCS/<category>/<n>.mat`` (``fixLocs``, a binary matrix);
  an image's name is ``<category>_<n>``.

Fixations are written as SALICON's ``.mat`` (``gaze``: one struct per
observer, 1-based (x, y)) or, for the two releases that keep only fixated
pixels, as a binary ``fixationPts`` matrix. Images in a format SALICON's
readers take are linked, not copied; others, and stimuli stored inside an
HDF5 file, are written as PNG, one at a time. The train/val split is the
dataset's own where it has one (pysaliency: separate ``val_stimuli`` and
``val_fixations`` files) or ``val_fraction`` of the images drawn with
``split_seed``.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.io
from tqdm import tqdm

from saldissect.core.errors import MissingFileError, UserError
from saldissect.core.io import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

#: The sources `import_dataset` writes into the SALICON layout.
SOURCES = ("pysaliency", "mit1003", "cat2000")
SPLITS = ("train", "val")
INSTALL_PYSALIENCY = (
    "source pysaliency needs pysaliency and h5py: pip install 'saldissect[pysaliency]' "
    "(or pip install pysaliency h5py)"
)


class DatasetImportError(UserError):
    """A dataset that cannot be written into the SALICON layout (one line says why)."""


@dataclass
class Sample:
    """One image to write: where its pixels come from, its fixations, its map."""

    name: str
    image: Path | np.ndarray  # a file, or RGB pixels (H x W x 3 or H x W)
    fixations: np.ndarray  # gaze struct array, or a binary H x W matrix
    saliency: np.ndarray | Path  # uint8 H x W map, or a map file


# ------------------------------------------------------------------ the split
def held_out(total: int, fraction: float) -> int:
    """How many of ``total`` images validation holds: ``fraction``, at least one, never all."""
    return min(total - 1, max(1, round(fraction * total))) if total > 1 else 0


def validation_names(names: list[str], fraction: float, seed: int) -> set[str]:
    """``fraction`` of ``names`` (at least one, never all), drawn with ``seed``."""
    if len(names) < 2:
        raise DatasetImportError(f"{len(names)} image(s): too few to split into train and val")
    count = held_out(len(names), fraction)
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[i] for i in order[:count]}


# ------------------------------------------------------------------- writing
def blur_pixels(blur: dict) -> float:
    """The map blur's standard deviation in pixels (``unit`` pixels or degrees)."""
    if blur["unit"] == "pixels":
        return float(blur["sigma"])
    if not blur.get("pixels_per_degree"):
        raise DatasetImportError("blur.unit degrees needs blur.pixels_per_degree (the display's)")
    return float(blur["sigma"]) * float(blur["pixels_per_degree"])


def fixation_counts(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    counts = np.zeros(shape, np.float32)
    np.add.at(counts, (rows, cols), 1.0)
    return counts


def blurred_map(counts: np.ndarray, sigma_px: float) -> np.ndarray:
    """Fixation counts blurred by a Gaussian of ``sigma_px``, scaled to 0..255 (uint8)."""
    blurred = cv2.GaussianBlur(counts, (0, 0), sigma_px) if sigma_px > 0 else counts
    return np.round(255 * blurred / max(float(blurred.max()), 1e-12)).astype(np.uint8)


def gaze_struct(x: np.ndarray, y: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """SALICON's ``gaze``: one struct per observer, 1-based (x, y) of the fixated pixels."""
    observers = np.unique(subjects)
    gaze = np.zeros((max(len(observers), 1), 1), dtype=[("fixations", "O")])
    if not len(observers):
        gaze[0, 0]["fixations"] = np.zeros((0, 2))
    for i, observer in enumerate(observers):
        chosen = subjects == observer
        gaze[i, 0]["fixations"] = np.stack([x[chosen], y[chosen]], axis=1).astype(np.float64) + 1
    return gaze


def _write_image(sample: Sample, folder: Path) -> None:
    source = sample.image
    if isinstance(source, Path) and source.suffix.lower() in IMAGE_SUFFIXES:
        target = folder / f"{sample.name}{source.suffix.lower()}"
        target.symlink_to(source.resolve())
        return
    if isinstance(source, Path):
        pixels = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if pixels is None:
            raise DatasetImportError(f"{source}: unreadable image")
    else:
        pixels = np.asarray(source)
        if pixels.dtype != np.uint8:
            pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        if pixels.ndim == 3:
            pixels = cv2.cvtColor(pixels[..., :3], cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / f"{sample.name}.png"), pixels)


def write_sample(sample: Sample, root: Path, split: str) -> None:
    """One image, its map and its fixations in the SALICON layout under ``root``."""
    _write_image(sample, root / "images" / split)
    saliency = sample.saliency
    target = root / "maps" / split / f"{sample.name}.png"
    if isinstance(saliency, Path) and saliency.suffix.lower() == ".png":
        target.symlink_to(saliency.resolve())
    else:
        cv2.imwrite(str(target), _read_gray(saliency) if isinstance(saliency, Path) else saliency)
    target = root / "fixations" / split / f"{sample.name}.mat"
    if sample.fixations.dtype.names:
        scipy.io.savemat(target, {"image": sample.name, "gaze": sample.fixations})
    else:
        scipy.io.savemat(target, {"fixationPts": sample.fixations.astype(np.uint8)})


def _read_gray(path: Path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        raise DatasetImportError(f"{path}: unreadable map")
    return pixels


def write_layout(samples: dict[str, Iterator[Sample]], root: Path, *, total: int) -> dict:
    """Every split's samples under ``root`` (new or empty); the number of images per split."""
    if root.is_dir() and any(root.iterdir()):
        raise DatasetImportError(f"{root} is not empty: the import writes a new layout")
    for kind in ("images", "maps", "fixations"):
        for split in SPLITS:
            (root / kind / split).mkdir(parents=True, exist_ok=True)
    written = dict.fromkeys(SPLITS, 0)
    with tqdm(total=total, desc="import", disable=None) as progress:
        for split, items in samples.items():
            for sample in items:
                write_sample(sample, root, split)
                written[split] += 1
                progress.update()
    return written


# ---------------------------------------------------------------- pysaliency
def _pysaliency():
    try:
        import h5py  # noqa: F401  (pysaliency's HDF5 readers import it lazily)

        with warnings.catch_warnings():  # pysaliency 0.2.22 imports pkg_resources
            warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
            import pysaliency
    except ImportError as error:
        raise DatasetImportError(f"{INSTALL_PYSALIENCY} ({error})") from None
    return pysaliency


def _hdf5_type(path: Path) -> str:
    import h5py

    with h5py.File(path, "r") as file:
        kind = file.attrs.get("type", b"")
    return kind.decode() if isinstance(kind, bytes) else str(kind)


@dataclass
class PysaliencyStimuli:
    """A pysaliency stimuli file, read one stimulus at a time.

    ``FileStimuli`` give file names (pysaliency's own reader); ``Stimuli`` hold
    their pixels in the file, which pysaliency's reader loads all at once, so
    they are read here one dataset (one stimulus) at a time.
    """

    path: Path
    names: list[str]
    shapes: list[tuple[int, int]]
    files: list[Path] | None

    @classmethod
    def read(cls, path: str | Path) -> PysaliencyStimuli:
        pysaliency = _pysaliency()
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"{path}: pysaliency stimuli file not found")
        kind = _hdf5_type(path)
        if kind == "Stimuli":
            import h5py

            with h5py.File(path, "r") as file:
                size = int(file.attrs["size"])
                shapes = [tuple(file[str(n)].shape[:2]) for n in range(size)]
            names = [f"stimulus_{n:06d}" for n in range(size)]
            return cls(path, names, shapes, None)
        stimuli = pysaliency.read_hdf5(str(path))
        if not hasattr(stimuli, "filenames"):
            raise DatasetImportError(
                f"{path}: a pysaliency {kind or type(stimuli).__name__}, not stimuli"
            )
        files = [Path(f) for f in stimuli.filenames]
        shapes = [tuple(int(v) for v in shape[:2]) for shape in stimuli.shapes]
        return cls(path, unique_names(files), shapes, files)

    def image(self, n: int) -> Path | np.ndarray:
        if self.files is not None:
            return self.files[n]
        import h5py

        with h5py.File(self.path, "r") as file:
            return file[str(n)][...]


def unique_names(files: list[Path]) -> list[str]:
    """File stems when they are unique; else the parent folder joins the stem
    (CAT2000's ``Action/001.jpg`` is ``Action_001``); else the index leads."""
    for name in (
        lambda f, n: f.stem,
        lambda f, n: f"{f.parent.name}_{f.stem}",
        lambda f, n: f"{n:06d}_{f.stem}",
    ):
        names = [re.sub(r"[^A-Za-z0-9_.-]", "_", name(f, n)) for n, f in enumerate(files)]
        if len(set(names)) == len(names):
            return names
    raise AssertionError("indexed names are unique")


def read_pysaliency_fixations(path: str | Path, n_stimuli: int):
    """x, y (integer pixels, pysaliency's ``x_int``), stimulus and subject of
    every fixation, sorted by stimulus, and each stimulus's slice bounds."""
    pysaliency = _pysaliency()
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: pysaliency fixations file not found")
    fixations = pysaliency.read_hdf5(str(path))
    if not hasattr(fixations, "n") or not hasattr(fixations, "x"):
        raise DatasetImportError(f"{path}: a pysaliency {type(fixations).__name__}, not fixations")
    x = np.asarray(fixations.x, np.float64)
    y = np.asarray(fixations.y, np.float64)
    n = np.asarray(fixations.n, np.int64)
    subject = getattr(fixations, "subject", None)
    if subject is None:
        subject = getattr(fixations, "subjects", np.zeros(len(n)))
    subject = np.asarray(subject)
    if len(n) and (n.min() < 0 or n.max() >= n_stimuli):
        raise DatasetImportError(
            f"{path}: fixations name stimulus {int(n.max())}, but the stimuli file has {n_stimuli}"
        )
    order = np.argsort(n, kind="stable")
    bounds = np.searchsorted(n[order], np.arange(n_stimuli + 1))
    return x[order], y[order], subject[order], bounds


def pysaliency_samples(
    stimuli: PysaliencyStimuli, fixations_path: str | Path, sigma_px: float, chosen: set | None
) -> Iterator[Sample]:
    """One sample per stimulus (those named in ``chosen``, or all)."""
    x, y, subject, bounds = read_pysaliency_fixations(fixations_path, len(stimuli.names))
    for n, name in enumerate(stimuli.names):
        if chosen is not None and name not in chosen:
            continue
        height, width = stimuli.shapes[n]
        lo, hi = bounds[n], bounds[n + 1]
        # pysaliency's x_int: the pixel a fixation falls in; the border's (x = width) kept inside
        cols = np.clip(x[lo:hi].astype(int), 0, width - 1)
        rows = np.clip(y[lo:hi].astype(int), 0, height - 1)
        yield Sample(
            name=name,
            image=stimuli.image(n),
            fixations=gaze_struct(cols, rows, subject[lo:hi]),
            saliency=blurred_map(fixation_counts(rows, cols, (height, width)), sigma_px),
        )


def import_pysaliency(cfg: dict, root: Path) -> dict:
    sigma = blur_pixels(cfg["blur"])
    stimuli = PysaliencyStimuli.read(cfg["stimuli"])
    if cfg.get("val_stimuli"):
        val = PysaliencyStimuli.read(cfg["val_stimuli"])
        clash = set(stimuli.names) & set(val.names)
        if clash:
            raise DatasetImportError(
                f"{cfg['stimuli']} and {cfg['val_stimuli']} share images: {sorted(clash)[:5]}"
            )
        samples = {
            "train": pysaliency_samples(stimuli, cfg["fixations"], sigma, None),
            "val": pysaliency_samples(val, cfg["val_fixations"], sigma, None),
        }
        total = len(stimuli.names) + len(val.names)
    else:
        held = validation_names(stimuli.names, cfg["val_fraction"], cfg["split_seed"])
        samples = {
            "train": pysaliency_samples(
                stimuli, cfg["fixations"], sigma, set(stimuli.names) - held
            ),
            "val": pysaliency_samples(stimuli, cfg["fixations"], sigma, held),
        }
        total = len(stimuli.names)
    log.info("pysaliency: %s, maps blurred by %.1f px", cfg["stimuli"], sigma)
    return write_layout(samples, root, total=total)


# ------------------------------------------------------- MIT1003 and CAT2000
def binary_points(path: Path) -> np.ndarray:
    """A fixated-pixel image or matrix as 0/1: JPEG-coded images at half their range."""
    if path.suffix.lower() == ".mat":
        mat = scipy.io.loadmat(path)
        key = next((k for k in ("fixLocs", "fixationPts") if k in mat), None)
        if key is None:
            raise DatasetImportError(f"{path}: no fixLocs matrix")
        return (np.asarray(mat[key]) > 0).astype(np.uint8)
    pixels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        raise DatasetImportError(f"{path}: unreadable fixation image")
    return (pixels > 127).astype(np.uint8)


def release_samples(
    triples: list[tuple[str, Path, Path, Path]], chosen: set[str]
) -> Iterator[Sample]:
    for name, image, saliency, points in triples:
        if name in chosen:
            yield Sample(name, image, binary_points(points), saliency)


def mit1003_triples(folder: Path) -> list[tuple[str, Path, Path, Path]]:
    stimuli, maps = folder / "ALLSTIMULI", folder / "ALLFIXATIONMAPS"
    for needed in (stimuli, maps):
        if not needed.is_dir():
            raise MissingFileError(f"{needed}: MIT1003 folder not found")
    triples, missing = [], []
    for image in sorted(p for p in stimuli.iterdir() if p.suffix.lower() in (".jpeg", ".jpg")):
        saliency = maps / f"{image.stem}_fixMap.jpg"
        points = maps / f"{image.stem}_fixPts.jpg"
        if saliency.is_file() and points.is_file():
            triples.append((image.stem, image, saliency, points))
        else:
            missing.append(image.name)
    if missing:
        log.warning("MIT1003: %d stimuli without maps left out: %s", len(missing), missing[:5])
    return triples


def cat2000_train(folder: Path) -> Path:
    """CAT2000's ``trainSet`` under ``folder``, or ``folder`` itself when it is that."""
    return folder / "trainSet" if (folder / "trainSet").is_dir() else folder


def cat2000_triples(folder: Path) -> list[tuple[str, Path, Path, Path]]:
    train = cat2000_train(folder)
    stimuli = train / "Stimuli"
    if not stimuli.is_dir():
        raise MissingFileError(f"{stimuli}: CAT2000 trainSet/Stimuli folder not found")
    triples, missing = [], []
    for category in sorted(p for p in stimuli.iterdir() if p.is_dir()):
        for image in sorted(p for p in category.iterdir() if p.suffix.lower() == ".jpg"):
            saliency = train / "FIXATIONMAPS" / category.name / image.name
            points = train / "FIXATIONLOCS" / category.name / f"{image.stem}.mat"
            if saliency.is_file() and points.is_file():
                triples.append((f"{category.name}_{image.stem}", image, saliency, points))
            else:
                missing.append(f"{category.name}/{image.name}")
    if missing:
        log.warning("CAT2000: %d stimuli without maps left out: %s", len(missing), missing[:5])
    return triples


def import_release(cfg: dict, root: Path, source: str) -> dict:
    folder = Path(cfg["folder"])
    triples = mit1003_triples(folder) if source == "mit1003" else cat2000_triples(folder)
    names = [name for name, *_ in triples]
    held = validation_names(names, cfg["val_fraction"], cfg["split_seed"])
    samples = {
        "train": release_samples(triples, set(names) - held),
        "val": release_samples(triples, held),
    }
    return write_layout(samples, root, total=len(names))


def import_dataset(cfg: dict, root: str | Path) -> dict:
    """Write the dataset ``cfg`` (its ``source`` one of `SOURCES`) into the SALICON
    layout under ``root``; the number of images per split."""
    root = Path(root)
    if cfg["source"] == "pysaliency":
        return import_pysaliency(cfg, root)
    if cfg["source"] in ("mit1003", "cat2000"):
        return import_release(cfg, root, cfg["source"])
    raise ValueError(f"source {cfg['source']!r} is not imported; importable: {SOURCES}")


def _stimuli_count(path: str | Path) -> int:
    """A pysaliency stimuli file's size attribute (0 when it cannot be read)."""
    try:
        import h5py

        with h5py.File(path, "r") as file:
            return int(file.attrs.get("size", 0))
    except (ImportError, OSError):
        return 0


def source_size(cfg: dict) -> dict[str, int]:
    """Train and val images a dataset will have once imported, read cheaply from
    its source (for the jobs' resource requests, before the import has run)."""
    if cfg["source"] == "pysaliency":
        total = _stimuli_count(cfg["stimuli"])
        if cfg.get("val_stimuli"):
            return {"train": total, "val": _stimuli_count(cfg["val_stimuli"])}
    else:
        folder = Path(cfg["folder"])
        stimuli = (
            folder / "ALLSTIMULI"
            if cfg["source"] == "mit1003"
            else cat2000_train(folder) / "Stimuli"
        )
        total = sum(1 for p in stimuli.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    val = held_out(total, cfg["val_fraction"])
    return {"train": total - val, "val": val}
