"""Adaptive thresholds and dissection: align bases with semantics (docs/method.md 3-4).

Conventions:
- bases and concepts are numbered from 0; concept masks live on the model's
  feature grid (h x w); a cell belongs to a concept when the union of its
  boxes covers at least ``min_cover`` of the cell;
- ``iou`` is 0 where the union is empty; an image contributes to a concept's
  mean IoU only when the concept's mask is non-empty there (empty masks are
  skipped), and the raw intersection and union sums are kept beside the mean
  so results can be audited and pooled (sum of intersections / sum of unions);
- ``contrast`` is the other side of the coin: not where a basis's mask lies,
  but how much more active the basis is inside a concept than over the whole of
  its image, averaged over the images where the concept occurs. Weighted by
  the basis weights it gives the contrast readout of `saldissect.analysis.contributions`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from saldissect.data.datasets import ImageDataset
from saldissect.models.networks import SaliencyModel
from saldissect.training.resources import cpu_model

log = logging.getLogger(__name__)


# -------------------------------------------------------------------- kernels
#: The ways `intersection_union` can count cells; all give identical, exact counts.
COUNTING_PATHS = ("int8", "onednn", "float", "popcount")
#: Environment variable forcing the CPU counting path (one of COUNTING_PATHS, or "auto").
COUNTING_PATH_ENV = "SALDISSECT_COUNTING_PATH"


def iou(
    prob_maps: Tensor, thresholds: Tensor, concept_masks: Tensor, *, path: str | None = None
) -> Tensor:
    """IoU of every basis mask with every concept mask, per image.

    ``prob_maps`` B x N x h x w (float), ``thresholds`` N, ``concept_masks``
    B x K x h x w (bool). Basis mask ``M[n] = P[n] > tau[n]``. Returns B x N x K
    ``|M & C| / |M | C|``, 0 where the union is empty. ``path``: see
    `intersection_union`.
    """
    inter, union = intersection_union(prob_maps, thresholds, concept_masks, path=path)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))


def intersection_union(
    prob_maps: Tensor, thresholds: Tensor, concept_masks: Tensor, *, path: str | None = None
) -> tuple[Tensor, Tensor]:
    """Intersection and union cell counts, B x N x K each (float32, exact).

    Every path counts exactly, so the choice changes the speed, never the
    result. GPUs take one float32 batched matmul. On the CPU, image by image
    and only over the concepts present in that image, one of:

    - ``int8``: int8 x int8 -> int32 products (``torch._int_mm``), fast where
      torch hands them to oneDNN (CPUs with AVX512-VNNI or AMX), slow elsewhere:
      torch then takes a plain loop, some 25x slower than the other paths;
    - ``onednn``: uint8 x int8 -> float32 products through oneDNN's quantized
      linear (``torch.ops.onednn.qlinear_pointwise``, scales 1: exact), which
      has int8 kernels for AVX2 too;
    - ``float``: float32 products (BLAS), fast on any x86-64 CPU with FMA;
    - ``popcount``: masks packed into 64-bit words, AND-ed and counted in a
      loop that numba compiles for the running CPU (`saldissect.analysis.popcounts`),
      fast on any x86-64 CPU.

    ``path`` forces one (tests, benchmarks); otherwise `counting_path` picks
    it: the ``SALDISSECT_COUNTING_PATH`` environment variable if set, else the
    fastest path in a short calibration run once per process.
    """
    if prob_maps.ndim != 4 or concept_masks.ndim != 4:
        raise ValueError(
            f"expected B x N x h x w maps and B x K x h x w masks, got "
            f"{tuple(prob_maps.shape)} and {tuple(concept_masks.shape)}"
        )
    if (
        prob_maps.shape[0] != concept_masks.shape[0]
        or prob_maps.shape[2:] != concept_masks.shape[2:]
    ):
        raise ValueError(
            f"prob_maps {tuple(prob_maps.shape)} and concept_masks "
            f"{tuple(concept_masks.shape)} differ in batch or grid size"
        )
    device = prob_maps.device
    path = counting_path(device) if path is None else _checked_path(path, device)
    if device.type != "cpu":
        return _counts_float(prob_maps, thresholds, concept_masks)
    return _CPU_COUNTS[path](prob_maps, thresholds, concept_masks)


def activation_contrast(prob_maps: Tensor, concept_masks: Tensor) -> Tensor:
    """How much more each basis is active inside each concept than over its image.

    ``prob_maps`` B x N x h x w, ``concept_masks`` B x K x h x w (bool). Returns
    B x N x K: mean of ``P[n]`` over the concept's cells minus mean of ``P[n]``
    over all cells of the image; 0 where the concept has no cell. One matmul.
    """
    maps = prob_maps.flatten(2).float()  # B x N x hw
    masks = concept_masks.flatten(2).to(maps.dtype)  # B x K x hw
    cells = masks.sum(2)  # B x K
    inside = torch.bmm(maps, masks.transpose(1, 2)) / cells.clamp_min(1)[:, None, :]
    contrast = inside - maps.mean(2, keepdim=True)
    return contrast * (cells > 0)[:, None, :]


def _onednn_counts_supported() -> bool:
    """Whether this torch has oneDNN's quantized linear (x86 and Arm builds with oneDNN)."""
    try:
        return torch.backends.mkldnn.is_available() and bool(
            torch.ops.onednn.qlinear_pointwise and torch.ops.onednn.qlinear_prepack
        )
    except (AttributeError, RuntimeError):
        return False


# ------------------------------------------------------- choosing the counting path
def counting_path(device: torch.device | str = "cpu") -> str:
    """The path `intersection_union` takes on ``device`` when not told one.

    GPUs: ``float`` (tensor cores; CUDA's int8 product has shape and layout
    rules of its own and is not timed there). CPUs: the
    ``SALDISSECT_COUNTING_PATH`` environment variable when it names a path
    (``auto`` or unset: choose), else the fastest path in `calibrate_counting`,
    measured once per process; of paths within 10% of the fastest, the first in
    `COUNTING_PATHS` (products before popcounts), so that near-ties do not flip
    from run to run. The choice is logged once. Results do not depend on it:
    all paths count exactly.
    """
    device = torch.device(device)
    if device.type != "cpu":
        return "float"
    forced = os.environ.get(COUNTING_PATH_ENV, "").strip().lower()
    if forced and forced != "auto":
        path = _checked_path(forced, device)
        _log_choice_once(path, f"forced by {COUNTING_PATH_ENV}")
        return path
    times = calibrate_counting()
    fastest = min(times.values())
    path = next(p for p in COUNTING_PATHS if p in times and times[p] <= 1.1 * fastest)
    detail = ", ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in times.items())
    _log_choice_once(path, f"fastest in calibration: {detail}")
    return path


def calibrate_counting() -> dict[str, float]:
    """CPU seconds each available CPU path takes on a small representative problem.

    One image, 256 bases, a 60 x 80 grid and 24 concepts, run on one thread
    and timed in that thread's CPU time (``time.thread_time``), not wall time:
    on a shared machine other processes take the CPU away for whole scheduler
    ticks (4 ms, several times a kernel's run), which wall-clock timing of a
    millisecond kernel cannot tell from the kernel being slow, and CPU time
    does not count. Every path spreads over torch's thread count the same way
    (one image per thread, each on one torch thread), so the one-thread
    ranking is taken for the ranking. Best of seven
    interleaved runs after a warm-up; a path more than 4x slower than the
    fastest in the first round is not run again. A path that fails here, or
    whose counts differ from the float32 batched product's, is left out (and
    logged as a warning). Cached per process; costs about 30-60 ms (the most
    where a path is slow here), plus the popcount loop's compilation the first
    time it runs on a machine (about a second; numba caches it on disk). While
    it runs, torch is set to one thread.
    """
    return dict(_calibration())


@functools.cache
def _calibration() -> tuple[tuple[str, float], ...]:
    generator = torch.Generator().manual_seed(0)
    prob = torch.rand(1, 256, 60, 80, generator=generator)
    thresholds = torch.rand(256, generator=generator) * 0.4 + 0.5
    masks = torch.rand(1, 24, 60, 80, generator=generator) > 0.85
    expected = _counts_float(prob, thresholds, masks)
    with _torch_threads(1):
        paths = []
        for path in _available_cpu_paths():
            try:  # also the warm-up: first-call costs (oneDNN primitives, allocations)
                inter, union = _CPU_COUNTS[path](prob, thresholds, masks)
            except Exception as error:  # noqa: BLE001 - an internal op may be missing or refuse
                log.warning("the %s counting path fails here and is not used: %s", path, error)
                continue
            if torch.equal(inter, expected[0]) and torch.equal(union, expected[1]):
                paths.append(path)
            else:
                log.warning("the %s counting path miscounts on this CPU and is not used", path)

        def timed(path: str) -> float:
            start = time.thread_time()
            _CPU_COUNTS[path](prob, thresholds, masks)
            return time.thread_time() - start

        best = {path: timed(path) for path in paths}
        fastest = min(best.values())
        contenders = [path for path in paths if best[path] <= 4 * fastest]
        for _ in range(6):
            for path in contenders:
                best[path] = min(best[path], timed(path))
    return tuple(best.items())


def _available_cpu_paths() -> list[str]:
    """The CPU paths this torch can run (not all of them fast)."""
    available = {"int8": hasattr(torch, "_int_mm"), "onednn": _onednn_counts_supported()}
    return [path for path in COUNTING_PATHS if available.get(path, True)]


def _checked_path(path: str, device: torch.device) -> str:
    if path not in COUNTING_PATHS:
        raise ValueError(f"counting path must be one of {COUNTING_PATHS}, got {path!r}")
    if device.type != "cpu" and path != "float":
        raise ValueError(f"the {path} counting path runs on the CPU only, not on {device}")
    if path not in _available_cpu_paths():
        raise ValueError(f"the {path} counting path is not available in this torch build")
    return path


_LOGGED_CHOICES: set[tuple[str, str]] = set()


def _log_choice_once(path: str, why: str) -> None:
    if (path, why) not in _LOGGED_CHOICES:
        _LOGGED_CHOICES.add((path, why))
        log.info(
            "dissection counts on the CPU (%s, torch capability %s, %d threads): %s path, %s",
            cpu_model(),
            torch.backends.cpu.get_cpu_capability(),
            torch.get_num_threads(),
            path,
            why,
        )


# ------------------------------------------------------------- counting paths
def _counts_float(
    prob_maps: Tensor, thresholds: Tensor, concept_masks: Tensor
) -> tuple[Tensor, Tensor]:
    """Counts as one float32 batched matmul over the whole batch (the GPU path).

    0/1 products accumulate exactly in float32 (also under TF32) up to 2**24 cells.
    """
    basis = (prob_maps > thresholds.view(1, -1, 1, 1)).flatten(2).float()  # B x N x hw
    concept = concept_masks.flatten(2).float()  # B x K x hw
    inter = torch.bmm(basis, concept.transpose(1, 2))  # B x N x K
    union = basis.sum(2)[:, :, None] + concept.sum(2)[:, None, :] - inter
    return inter, union


# (basis N x hw bool, concepts K' x hw bool, workspace) -> N x K' and N cell counts
ImageCount = Callable[[Tensor, Tensor, dict], tuple[Tensor, Tensor]]


def _counts_per_image(
    prob_maps: Tensor,
    thresholds: Tensor,
    concept_masks: Tensor,
    count: ImageCount,
) -> tuple[Tensor, Tensor]:
    """Threshold one image at a time and ``count`` its basis masks against the
    concepts present in it; absent concepts have no intersection.

    One image's basis masks stay in cache between the threshold and the count.
    Work is spread over torch's thread count: with several images, whole
    images run side by side, one per thread, each product on one torch thread
    (numpy and torch's products release the GIL). A product of this shape
    (N x hw times hw x K', K' ~ 25) gains little from a second torch thread:
    on an AVX2 CPU oneDNN's takes 0.81 ms on one thread and 0.77 ms on two,
    while two images side by side take half the time of two in turn
    (bench/iou_speed.py). A single image thresholds in blocks of bases instead,
    and its product takes torch's threads.
    """
    n_images, n_bases = prob_maps.shape[:2]
    cells = prob_maps.shape[2] * prob_maps.shape[3]
    masks = concept_masks.flatten(2)
    concept_cells = masks.sum(2, dtype=torch.int32)  # B x K
    inter = torch.zeros(n_images, n_bases, masks.shape[1])
    basis_cells = torch.zeros(n_images, n_bases, 1)
    maps = prob_maps.detach().flatten(2)  # counts have no gradient
    tau = thresholds.detach().view(-1, 1)
    # numpy's comparison is vectorised; torch's with a bool output is not.
    floats = (torch.float32, torch.float64)
    use_numpy = maps.dtype in floats and tau.dtype in floats
    tau_np = tau.numpy() if use_numpy else None
    parallel = _parallel_work(n_bases * cells)
    images_in_parallel = parallel > 1 and n_images > 1
    blocks = _blocks(n_bases, 1 if images_in_parallel else parallel)

    def one_image(image: int, basis: Tensor, workspace: dict) -> None:
        if use_numpy:
            image_maps, basis_np = maps[image].numpy(), basis.numpy()
            _in_parallel(
                lambda rows: np.greater(image_maps[rows], tau_np[rows], out=basis_np[rows]),
                blocks,
            )
        else:
            torch.gt(maps[image], tau, out=basis)
        present = concept_cells[image].nonzero().flatten()
        everything = len(present) == masks.shape[1]
        concepts = masks[image] if everything else masks[image, present]
        counts, ones = count(basis, concepts, workspace)
        if everything:
            inter[image] = counts
        else:
            inter[image, :, present] = counts.to(inter.dtype)
        basis_cells[image, :, 0] = ones

    if images_in_parallel:
        with _torch_threads(1):
            _in_parallel(
                lambda image: one_image(image, torch.empty(n_bases, cells, dtype=torch.bool), {}),
                range(n_images),
                min(parallel, n_images),
            )
    else:
        basis, workspace = torch.empty(n_bases, cells, dtype=torch.bool), {}
        for image in range(n_images):
            one_image(image, basis, workspace)
    return inter, basis_cells + concept_cells.to(inter.dtype)[:, None, :] - inter


_PARALLEL_CELLS = 1 << 18  # an image of fewer basis cells is not worth a second thread


def _parallel_work(cells: int) -> int:
    """Threads for an image of ``cells`` basis cells: torch's thread count, or 1
    where a thread would not pay."""
    return torch.get_num_threads() if cells >= _PARALLEL_CELLS else 1


def _blocks(rows: int, parts: int) -> list[slice]:
    """``rows`` split into ``parts`` blocks (fewer where there are fewer rows)."""
    parts = max(1, min(parts, rows))
    return [slice(i * rows // parts, (i + 1) * rows // parts) for i in range(parts)]


def _in_parallel(work: Callable, items, threads: int | None = None) -> None:
    """``work`` on every item, in ``threads`` (default: one per item) threads."""
    items = list(items)
    threads = min(threads or len(items), len(items))
    if threads <= 1:
        for item in items:
            work(item)
    else:
        for done in _thread_pool(threads).map(work, items):
            del done


@contextlib.contextmanager
def _torch_threads(threads: int):
    """Torch's intra-op thread count set to ``threads`` for the block, then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def _thread_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="saldissect-counts")


def _count_int8(basis: Tensor, concepts: Tensor, workspace: dict) -> tuple[Tensor, Tensor]:
    """One image as an int8 x int8 -> int32 product, exact.

    A bool tensor is an int8 tensor of 0s and 1s, so the thresholded maps go
    into the product without a conversion pass. An extra all-ones concept
    column makes the same product count each basis mask's cells.
    """
    n_concepts, cells = concepts.shape
    width = -(-(n_concepts + 1) // 8) * 8
    # Built row-major as hw x width: _int_mm reads strides as given, and a
    # transposed view of a one-cell grid would carry strides it misreads.
    # (numpy transposes the bool masks into it twice as fast as torch; a copy,
    # not ascontiguousarray, which keeps a one-cell grid's odd strides.)
    columns = np.zeros((width, cells), np.int8)
    columns[:n_concepts] = concepts.numpy()
    columns[n_concepts] = 1
    concept = torch.from_numpy(columns.T.copy())
    counts = torch._int_mm(basis.view(torch.int8), concept)
    return counts[:, :n_concepts], counts[:, n_concepts]


def _count_onednn(basis: Tensor, concepts: Tensor, workspace: dict) -> tuple[Tensor, Tensor]:
    """One image as oneDNN's quantized linear: uint8 basis masks (the bool tensor
    itself) times int8 concept masks, int32 accumulation, written out as float32
    with all scales 1 and zero points 0, so exact up to 2**24 cells. An all-ones
    concept row counts the basis masks. oneDNN has such kernels for AVX2
    (``vpmaddubsw``: 0/1 pairs cannot saturate), AVX512, VNNI and AMX."""
    n_concepts, cells = concepts.shape
    n_bases = basis.shape[0]
    if n_bases == 0 or cells == 0:  # oneDNN wants a non-empty product
        counts = torch.zeros(n_bases, n_concepts + 1)
        return counts[:, :n_concepts], counts[:, n_concepts]
    weight = torch.empty(n_concepts + 1, cells, dtype=torch.int8)
    weight[:n_concepts] = concepts
    weight[n_concepts] = 1
    packed = torch.ops.onednn.qlinear_prepack(weight, [n_bases, cells])
    scales = torch.ones(n_concepts + 1)
    zero_points = torch.zeros(n_concepts + 1, dtype=torch.int64)
    counts = torch.ops.onednn.qlinear_pointwise(
        basis.view(torch.uint8), 1.0, 0, packed, scales, zero_points, None,
        1.0, 0, torch.float32, "none", [], "",
    )  # fmt: skip
    return counts[:, :n_concepts], counts[:, n_concepts]


def _count_float(basis: Tensor, concepts: Tensor, workspace: dict) -> tuple[Tensor, Tensor]:
    """One image as a float32 product (exact up to 2**24 cells), ones column as above."""
    n_concepts, cells = concepts.shape
    maps = workspace.get("float")
    if maps is None or maps.shape != basis.shape:
        maps = workspace["float"] = torch.empty(basis.shape)
    maps.copy_(basis)
    concept = torch.zeros(cells, n_concepts + 1)
    concept[:, :n_concepts] = concepts.t()
    concept[:, n_concepts] = 1
    counts = torch.mm(maps, concept)
    return counts[:, :n_concepts], counts[:, n_concepts]


def _count_popcount(basis: Tensor, concepts: Tensor, workspace: dict) -> tuple[Tensor, Tensor]:
    """One image as popcounts: each mask packed into 64-bit words, and every
    basis row AND-ed with every concept row and its bits counted in one
    compiled loop (`saldissect.analysis.popcounts`)."""
    from saldissect.analysis.popcounts import and_popcounts  # numba loads on first use

    words, concept_words = _bit_words(basis.numpy()), _bit_words(concepts.numpy())
    inter = np.empty((words.shape[0], concept_words.shape[0]), np.float32)
    ones = np.empty(words.shape[0], np.float32)
    and_popcounts(words, concept_words, inter, ones)
    return torch.from_numpy(inter), torch.from_numpy(ones)


def _bit_words(masks: np.ndarray) -> np.ndarray:
    """R x hw bool masks as R x W uint64 words (W = ceil(hw / 64), zero-padded)."""
    rows, cells = masks.shape
    packed = np.zeros((rows, -(-cells // 64) * 8), np.uint8)
    packed[:, : -(-cells // 8)] = np.packbits(masks, axis=1, bitorder="little")
    return packed.view(np.uint64)


#: Each CPU path: `_counts_per_image` with its per-image count.
_CPU_COUNTS = {
    path: functools.partial(_counts_per_image, count=count)
    for path, count in (
        ("int8", _count_int8),
        ("onednn", _count_onednn),
        ("float", _count_float),
        ("popcount", _count_popcount),
    )
}


def union_coverage(
    boxes: Tensor,
    slots: Tensor,
    n_slots: int,
    grid: tuple[int, int],
    min_cover: float,
    supersample: int = 4,
    chunk: int = 512,
) -> Tensor:
    """Rasterise unions of boxes onto the feature grid, all at once.

    ``boxes`` R x 4 (x, y, w, h) as fractions of their image; ``slots`` R ints
    saying which mask each box belongs to (boxes of one slot are unioned). A
    grid cell belongs to a mask when the union covers at least ``min_cover``
    of it, measured on a grid ``supersample`` times finer. Returns
    ``n_slots`` x h x w bool. Boxes are processed ``chunk`` at a time so
    memory stays bounded on large grids.
    """
    gh, gw = grid
    fy = (torch.arange(gh * supersample, device=boxes.device) + 0.5) / (gh * supersample)
    fx = (torch.arange(gw * supersample, device=boxes.device) + 0.5) / (gw * supersample)
    hits = torch.zeros(n_slots, gh * supersample * gw * supersample, device=boxes.device)
    for start in range(0, len(boxes), chunk):
        b, slot = boxes[start : start + chunk], slots[start : start + chunk]
        inside_y = (fy[None] >= b[:, 1:2]) & (fy[None] < b[:, 1:2] + b[:, 3:4])
        inside_x = (fx[None] >= b[:, 0:1]) & (fx[None] < b[:, 0:1] + b[:, 2:3])
        cells = (inside_y[:, :, None] & inside_x[:, None, :]).flatten(1).float()
        hits.index_add_(0, slot, cells)
    union = (hits > 0).float().view(n_slots, 1, gh * supersample, gw * supersample)
    return torch.nn.functional.avg_pool2d(union, supersample)[:, 0] >= min_cover


def coverage_masks(
    boxes: list[np.ndarray],
    image_size: tuple[int, int],
    grid: tuple[int, int],
    min_cover: float,
    supersample: int = 4,
) -> Tensor:
    """Masks of one image: ``boxes`` lists each concept's (x, y, w, h) boxes in
    pixels of an image of ``image_size`` (height, width). Returns K x h x w bool."""
    height, width = image_size
    arrays = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]
    stacked = torch.as_tensor(np.concatenate(arrays)) / torch.tensor([width, height] * 2)
    slots = torch.repeat_interleave(
        torch.arange(len(arrays)), torch.tensor([len(a) for a in arrays])
    )
    return union_coverage(stacked, slots, len(arrays), grid, min_cover, supersample)


class ConceptIndex:
    """The concept table arranged for fast per-batch mask building.

    Boxes are kept as fractions of their image, with their vocabulary index,
    sorted by probe row so a batch's boxes are contiguous slices.
    """

    def __init__(self, probe: pd.DataFrame, concepts: pd.DataFrame) -> None:
        vocabulary = (
            concepts[["concept", "kind"]].drop_duplicates().sort_values(["kind", "concept"])
        )
        self.vocabulary = vocabulary.reset_index(drop=True)
        key = pd.MultiIndex.from_frame(self.vocabulary)
        row_of = pd.Series(np.arange(len(probe)), index=probe["image_id"].to_numpy())
        rows = row_of.reindex(concepts["image_id"].to_numpy()).to_numpy()
        keep = ~np.isnan(rows)
        table = concepts[keep]
        rows = rows[keep].astype(np.int64)
        order = np.argsort(rows, kind="stable")
        self.rows = rows[order]
        self.concept = key.get_indexer(pd.MultiIndex.from_frame(table[["concept", "kind"]]))[order]
        size = probe[["width", "height", "width", "height"]].to_numpy(np.float32)[self.rows]
        self.boxes = table[["x", "y", "w", "h"]].to_numpy(np.float32)[order] / size
        self.start = np.searchsorted(self.rows, np.arange(len(probe) + 1))

    def batch_masks(
        self, batch_rows: np.ndarray, grid: tuple[int, int], min_cover: float, device
    ) -> tuple[Tensor, np.ndarray]:
        """Masks B x K' x h x w of the batch's images over the K' concepts they hold,
        and those concepts' vocabulary indices."""
        pieces = [np.arange(self.start[r], self.start[r + 1]) for r in batch_rows]
        local = np.repeat(np.arange(len(batch_rows)), [len(p) for p in pieces])
        picked = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
        present, column = np.unique(self.concept[picked], return_inverse=True)
        slots = torch.as_tensor(local * len(present) + column, device=device)
        boxes = torch.as_tensor(self.boxes[picked], device=device)
        masks = union_coverage(boxes, slots, len(batch_rows) * len(present), grid, min_cover)
        return masks.view(len(batch_rows), len(present), *grid), present


# ------------------------------------------------------------------ thresholds
class BasisHistogram:
    """Streaming per-basis histogram of activations in [0, 1] (one pass, fixed memory)."""

    def __init__(self, n_bases: int, bins: int = 10000, device: torch.device | str = "cpu"):
        self.bins = bins
        self.counts = torch.zeros(n_bases, bins, dtype=torch.float64, device=device)

    def update(self, prob: Tensor) -> None:
        n = prob.shape[1]
        values = prob.transpose(0, 1).reshape(n, -1)
        index = (values * self.bins).long().clamp_(0, self.bins - 1)
        one = torch.ones((), dtype=self.counts.dtype, device=self.counts.device)
        self.counts.scatter_add_(1, index, one.expand_as(index))

    def quantile(self, q: float) -> tuple[Tensor, Tensor]:
        """q-quantile per basis, linear within its bin, and the fraction above it."""
        cdf = self.counts.cumsum(1)
        total = cdf[:, -1:]
        target = q * total
        index = torch.searchsorted(cdf, target).clamp_(max=self.bins - 1)  # first bin reaching q
        below = torch.where(
            index > 0, cdf.gather(1, (index - 1).clamp_min(0)), torch.zeros_like(target)
        )
        inside = self.counts.gather(1, index)
        frac = torch.where(
            inside > 0, (target - below) / inside.clamp_min(1e-12), torch.zeros_like(target)
        )
        threshold = (index.double() + frac) / self.bins
        active = 1.0 - (below + frac * inside) / total.clamp_min(1)
        return threshold.squeeze(1), active.squeeze(1)


@torch.no_grad()
def compute_thresholds(
    model: SaliencyModel,
    images: pd.DataFrame,
    size: tuple[int, int],
    *,
    quantile: float,
    bins: int,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> pd.DataFrame:
    """Per-basis q-quantile of P over all grid cells of all given images."""
    model.eval()
    loader = DataLoader(ImageDataset(images, size), batch_size=batch_size, num_workers=num_workers)
    histogram = BasisHistogram(model.n_bases, bins, device)
    for batch in tqdm(loader, desc="thresholds", disable=None):
        histogram.update(model(batch["image"].to(device))["prob"].float())
    threshold, active = histogram.quantile(quantile)
    return pd.DataFrame(
        {
            "basis": np.arange(model.n_bases),
            "threshold": threshold.cpu().numpy(),
            "quantile": float(quantile),
            "active_fraction": active.cpu().numpy(),
        }
    )


# ------------------------------------------------------------------ dissection
def poisson_weights(seed: int, rows: Tensor, replicates: int) -> Tensor:
    """R x B Poisson(1) weights (float64) of the probe rows ``rows``, each row from
    its own stream seeded by ``(seed, row)``: the same image gets the same
    weights in every readout and whatever the batch size."""
    columns = [
        np.random.default_rng([seed, int(row)]).poisson(1.0, replicates) for row in rows.tolist()
    ]
    return torch.as_tensor(np.stack(columns, axis=1), dtype=torch.float64)


class PoissonBootstrap:
    """Bootstrap replicates of the alignment scores over probe images, in one pass.

    Each replicate weighs image i by ``W[r, i] ~ Poisson(1)`` (the Poisson
    bootstrap: resampling with replacement, without a second pass). Image i's
    R weights are drawn from their own stream, seeded by ``(seed, i)``, when its
    batch arrives: replicates do not depend on the batch size, and nothing is
    held per probe image. Only the sums that the chosen ``score`` needs are
    accumulated, as one matmul per batch.

    Memory (`state_bytes`): R x N x K float32 for the numerators, plus R x K
    (mean IoU) or another R x N x K (pooled IoU) for the denominators; reading
    the replicates out adds one block of ``chunk`` replicates. At the paper's
    R = 200, N = 512, K = 2,000: 819 MB for mean IoU, 1.64 GB for pooled IoU.
    """

    def __init__(
        self,
        replicates: int,
        n_images: int,
        n_bases: int,
        n_concepts: int,
        *,
        score: str,
        seed: int,
        device: torch.device | str = "cpu",
    ) -> None:
        if score not in ("mean_iou", "pooled_iou"):
            raise ValueError(f"score must be mean_iou or pooled_iou, got {score!r}")
        self.replicates, self.seed, self.score = replicates, seed, score
        shape = (replicates, n_bases, n_concepts)
        self.numerator = torch.zeros(shape, device=device)
        # mean IoU divides by the (weighted) image count, pooled IoU by the union
        self.denominator = torch.zeros(
            (replicates, 1, n_concepts) if score == "mean_iou" else shape, device=device
        )

    @staticmethod
    def state_bytes(replicates: int, n_bases: int, n_concepts: int, score: str) -> int:
        """Bytes of the accumulated state for R replicates, N bases and K concepts."""
        per = 2 if score == "pooled_iou" else 1
        return 4 * replicates * n_concepts * (n_bases * per + (1 if per == 1 else 0))

    def weights_of(self, rows: Tensor) -> Tensor:
        """R x B Poisson(1) weights of the probe rows ``rows`` (`poisson_weights`)."""
        return poisson_weights(self.seed, rows, self.replicates).float()

    def update(
        self,
        rows: Tensor,
        columns: Tensor,
        scores: Tensor,
        inter: Tensor,
        union: Tensor,
        occurs: Tensor,
    ) -> None:
        """Add a batch: ``rows`` its probe rows (B), ``columns`` its concepts' vocabulary
        indices (K'), the B x N x K' scores/intersections/unions and B x K' occurrence
        (all already zero where the concept does not occur)."""
        weights = self.weights_of(rows.cpu()).to(self.numerator.device)  # R x B
        if self.score == "mean_iou":
            numerator = torch.einsum("rb,bnk->rnk", weights, scores)
            denominator = (weights @ occurs.float())[:, None, :]
        else:
            numerator = torch.einsum("rb,bnk->rnk", weights, inter)
            denominator = torch.einsum("rb,bnk->rnk", weights, union)
        self.numerator.index_add_(2, columns, numerator)
        self.denominator.index_add_(2, columns, denominator)

    def values(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Replicate scores of replicates ``start:stop`` (all by default), r x N x K
        (0 where a replicate drew no image of a concept)."""
        numerator = self.numerator[start:stop]
        denominator = self.denominator[start:stop].expand_as(numerator)
        return torch.where(
            denominator > 0,
            numerator / denominator.clamp_min(1e-12),
            torch.zeros_like(numerator),
        )

    def top_table(self, vocabulary: pd.DataFrame, keep_top: int, chunk: int = 16) -> pd.DataFrame:
        """The ``keep_top`` best concepts of every basis in every replicate (columns
        replicate, basis, concept, kind, value): all that the contributions need
        when ``keep_top`` is their top-k. Zero scores are left out. Read out
        ``chunk`` replicates at a time, so only that block of scores is ever extra."""
        pieces = []
        for start in range(0, self.replicates, chunk):
            values = self.values(start, start + chunk)
            k = min(keep_top, values.shape[2])
            top, index = values.topk(k, dim=2)  # r x N x k, ties by lowest index
            del values
            replicate, basis, _ = np.meshgrid(
                np.arange(start, start + top.shape[0]),
                np.arange(top.shape[1]),
                np.arange(k),
                indexing="ij",
            )
            top, index = top.cpu().numpy().ravel(), index.cpu().numpy().ravel()
            keep = top > 0
            pieces.append(
                pd.DataFrame(
                    {
                        "replicate": replicate.ravel()[keep].astype(np.int32),
                        "basis": basis.ravel()[keep].astype(np.int64),
                        "concept": vocabulary["concept"].to_numpy()[index[keep]],
                        "kind": vocabulary["kind"].to_numpy()[index[keep]],
                        "value": top[keep].astype(np.float64),
                    }
                )
            )
        return pd.concat(pieces, ignore_index=True) if pieces else empty_bootstrap()


@torch.no_grad()
def dissect(
    model: SaliencyModel,
    probe: pd.DataFrame,
    concepts: pd.DataFrame,
    thresholds: Tensor,
    size: tuple[int, int],
    *,
    min_cover: float,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    bootstrap: int = 0,
    seed: int = 0,
    score: str = "mean_iou",
    keep_top: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alignment of every (basis, concept) pair over the probe set.

    Returns the alignment table (one row per pair with mean IoU over the
    images where the concept occurs, pooled IoU, the raw intersection and
    union sums, the number of images, and the mean `activation_contrast` over
    those images) and the ``bootstrap`` replicates of
    ``score`` (see `PoissonBootstrap.top_table`; empty when ``bootstrap`` is 0).
    """
    model.eval()
    probe = probe.reset_index(drop=True)
    index = ConceptIndex(probe, concepts)
    vocabulary = index.vocabulary
    n_bases, n_concepts = model.n_bases, len(vocabulary)
    sum_iou = torch.zeros(n_bases, n_concepts, dtype=torch.float64, device=device)
    sum_inter = torch.zeros_like(sum_iou)
    sum_union = torch.zeros_like(sum_iou)
    sum_contrast = torch.zeros_like(sum_iou)
    n_images = torch.zeros(n_concepts, dtype=torch.float64, device=device)
    replicates = (
        PoissonBootstrap(
            bootstrap, len(probe), n_bases, n_concepts, score=score, seed=seed, device=device
        )
        if bootstrap
        else None
    )
    thresholds = thresholds.to(device)
    loader = DataLoader(ImageDataset(probe, size), batch_size=batch_size, num_workers=num_workers)
    for batch in tqdm(loader, desc="dissection", disable=None):
        prob = model(batch["image"].to(device))["prob"].float()
        # Only the concepts present in this batch: K stays small for large vocabularies.
        masks, present = index.batch_masks(
            batch["index"].numpy(), tuple(prob.shape[2:]), min_cover, device
        )
        inter, union = intersection_union(prob, thresholds, masks)
        scores = torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))
        occurs = masks.flatten(2).any(2)  # B x K
        scores = scores * occurs[:, None, :]
        inter = inter * occurs[:, None, :]
        union = union * occurs[:, None, :]
        cols = torch.as_tensor(present, device=device)
        sum_iou[:, cols] += scores.sum(0).double()
        sum_inter[:, cols] += inter.sum(0).double()
        sum_union[:, cols] += union.sum(0).double()
        sum_contrast[:, cols] += activation_contrast(prob, masks).sum(0).double()
        n_images[cols] += occurs.sum(0).double()
        if replicates is not None:
            replicates.update(batch["index"], cols, scores, inter, union, occurs)
    mean_iou = sum_iou / n_images.clamp_min(1)
    pooled = torch.where(
        sum_union > 0, sum_inter / sum_union.clamp_min(1), torch.zeros_like(sum_union)
    )
    basis, concept = np.meshgrid(np.arange(n_bases), np.arange(n_concepts), indexing="ij")
    alignment = pd.DataFrame(
        {
            "basis": basis.ravel(),
            "concept": vocabulary["concept"].to_numpy()[concept.ravel()],
            "kind": vocabulary["kind"].to_numpy()[concept.ravel()],
            "mean_iou": mean_iou.cpu().numpy().ravel(),
            "pooled_iou": pooled.cpu().numpy().ravel(),
            "intersection": sum_inter.cpu().numpy().ravel(),
            "union": sum_union.cpu().numpy().ravel(),
            "n_images": n_images.cpu().numpy()[concept.ravel()].astype(np.int64),
            "contrast": (sum_contrast / n_images.clamp_min(1)).cpu().numpy().ravel(),
        }
    )
    if replicates is None:
        return alignment, empty_bootstrap()
    return alignment, replicates.top_table(vocabulary, keep_top)


def empty_bootstrap() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "replicate": pd.Series(dtype=np.int32),
            "basis": pd.Series(dtype=np.int64),
            "concept": pd.Series(dtype=object),
            "kind": pd.Series(dtype=object),
            "value": pd.Series(dtype=np.float64),
        }
    )
