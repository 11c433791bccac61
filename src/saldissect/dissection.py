"""Adaptive thresholds and dissection: align bases with semantics (METHOD.md 3-4).

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
  the basis weights it gives the contrast readout of `saldissect.contributions`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from saldissect.data import ImageDataset
from saldissect.models import SaliencyModel


# -------------------------------------------------------------------- kernels
def iou(prob_maps: Tensor, thresholds: Tensor, concept_masks: Tensor) -> Tensor:
    """IoU of every basis mask with every concept mask, per image.

    ``prob_maps`` B x N x h x w (float), ``thresholds`` N, ``concept_masks``
    B x K x h x w (bool). Basis mask ``M[n] = P[n] > tau[n]``. Returns B x N x K
    ``|M & C| / |M | C|``, 0 where the union is empty.
    """
    inter, union = intersection_union(prob_maps, thresholds, concept_masks)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))


def intersection_union(
    prob_maps: Tensor, thresholds: Tensor, concept_masks: Tensor
) -> tuple[Tensor, Tensor]:
    """Intersection and union cell counts, B x N x K each (float32, exact).

    Counted as matrix products of 0/1 masks: int8 x int8 -> int32 on the CPU,
    float32 elsewhere.
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
    if _int8_counts_supported(prob_maps):
        return _counts_int8(prob_maps, thresholds, concept_masks)
    return _counts_float(prob_maps, thresholds, concept_masks)


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


def _int8_counts_supported(prob_maps: Tensor) -> bool:
    """Whether the int8 path runs here: on the CPU, where torch has ``_int_mm``.

    GPUs keep the float32 product (tensor cores); CUDA's int8 product has
    shape and layout rules of its own and is not timed there yet.
    """
    return prob_maps.device.type == "cpu" and hasattr(torch, "_int_mm")


def _counts_int8(
    prob_maps: Tensor, thresholds: Tensor, concept_masks: Tensor
) -> tuple[Tensor, Tensor]:
    """Counts as exact int8 x int8 -> int32 products, one image at a time.

    A bool tensor is an int8 tensor of 0s and 1s, so the thresholded maps go
    into the product without a conversion pass. An extra all-ones concept
    column makes the same product count each basis mask's cells. The basis
    masks of one image stay in cache between the threshold and the product.
    """
    n_images, n_bases = prob_maps.shape[:2]
    n_concepts, cells = concept_masks.shape[1], prob_maps.shape[2] * prob_maps.shape[3]
    device = prob_maps.device
    width = -(-(n_concepts + 1) // 8) * 8
    # Built row-major as B x hw x width: _int_mm reads strides as given, and a
    # transposed view of a one-cell grid would carry strides it misreads.
    concept = torch.zeros(n_images, cells, width, dtype=torch.int8, device=device)
    concept[:, :, :n_concepts] = concept_masks.flatten(2).transpose(1, 2)
    concept[:, :, n_concepts] = 1
    counts = torch.empty(n_images, n_bases, width, dtype=torch.int32, device=device)
    basis = torch.empty(n_bases, cells, dtype=torch.bool, device=device)
    maps = prob_maps.detach().flatten(2)  # counts have no gradient
    tau = thresholds.detach().view(-1, 1)
    # numpy's comparison is vectorised; torch's with a bool output is not.
    use_numpy = maps.dtype in (torch.float32, torch.float64) and tau.dtype in (
        torch.float32,
        torch.float64,
    )
    for image in range(n_images):
        if use_numpy:
            np.greater(maps[image].numpy(), tau.numpy(), out=basis.numpy())
        else:
            torch.gt(maps[image], tau, out=basis)
        torch._int_mm(basis.view(torch.int8), concept[image], out=counts[image])
    inter = counts[:, :, :n_concepts].float()
    basis_cells = counts[:, :, n_concepts : n_concepts + 1].float()
    concept_cells = concept_masks.flatten(2).sum(2).float()[:, None, :]
    return inter, basis_cells + concept_cells - inter


def _counts_float(
    prob_maps: Tensor, thresholds: Tensor, concept_masks: Tensor
) -> tuple[Tensor, Tensor]:
    """Counts as one float32 batched matmul (GPUs, and CPUs without ``_int_mm``).

    0/1 products accumulate exactly in float32 (also under TF32) up to 2**24 cells.
    """
    basis = (prob_maps > thresholds.view(1, -1, 1, 1)).flatten(2).float()  # B x N x hw
    concept = concept_masks.flatten(2).float()  # B x K x hw
    inter = torch.bmm(basis, concept.transpose(1, 2))  # B x N x K
    union = basis.sum(2)[:, :, None] + concept.sum(2)[:, None, :] - inter
    return inter, union


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
class PoissonBootstrap:
    """Bootstrap replicates of the alignment scores over probe images, in one pass.

    Each replicate weighs image i by ``W[r, i] ~ Poisson(1)`` (the Poisson
    bootstrap: resampling with replacement, without a second pass). Weights
    are drawn once for the whole probe set from ``seed``, so the replicates do
    not depend on the batch size. Only the sums that the chosen ``score``
    needs are accumulated, R x N x K each, as one matmul per batch.
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
        generator = torch.Generator().manual_seed(seed)
        self.weights = torch.poisson(torch.ones(replicates, n_images), generator=generator)
        self.score = score
        shape = (replicates, n_bases, n_concepts)
        self.numerator = torch.zeros(shape, device=device)
        # mean IoU divides by the (weighted) image count, pooled IoU by the union
        self.denominator = torch.zeros(
            (replicates, 1, n_concepts) if score == "mean_iou" else shape, device=device
        )

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
        weights = self.weights[:, rows.cpu()].to(self.numerator.device)  # R x B
        if self.score == "mean_iou":
            numerator = torch.einsum("rb,bnk->rnk", weights, scores)
            denominator = (weights @ occurs.float())[:, None, :]
        else:
            numerator = torch.einsum("rb,bnk->rnk", weights, inter)
            denominator = torch.einsum("rb,bnk->rnk", weights, union)
        self.numerator.index_add_(2, columns, numerator)
        self.denominator.index_add_(2, columns, denominator)

    def values(self) -> Tensor:
        """R x N x K replicate scores (0 where a replicate drew no image of a concept)."""
        denominator = self.denominator.expand_as(self.numerator)
        return torch.where(
            denominator > 0,
            self.numerator / denominator.clamp_min(1e-12),
            torch.zeros_like(self.numerator),
        )

    def top_table(self, vocabulary: pd.DataFrame, keep_top: int) -> pd.DataFrame:
        """The ``keep_top`` best concepts of every basis in every replicate (columns
        replicate, basis, concept, kind, value): all that the contributions need
        when ``keep_top`` is their top-k. Zero scores are left out."""
        values = self.values()
        k = min(keep_top, values.shape[2])
        top, index = values.topk(k, dim=2)  # R x N x k, ties by lowest index
        replicate, basis, _ = np.meshgrid(
            np.arange(values.shape[0]), np.arange(values.shape[1]), np.arange(k), indexing="ij"
        )
        top, index = top.cpu().numpy().ravel(), index.cpu().numpy().ravel()
        keep = top > 0
        return pd.DataFrame(
            {
                "replicate": replicate.ravel()[keep].astype(np.int32),
                "basis": basis.ravel()[keep].astype(np.int64),
                "concept": vocabulary["concept"].to_numpy()[index[keep]],
                "kind": vocabulary["kind"].to_numpy()[index[keep]],
                "value": top[keep].astype(np.float64),
            }
        )


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
