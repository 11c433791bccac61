"""Two readouts of the phase-two logit per concept, with bootstrap intervals
(docs/method.md 5, "Contrast and regression readouts").

Both read the linearised phase-two logit on the feature grid,
``y = sum_n w[n] P[n]`` (``w`` the basis weights: each basis's 3 x 3 kernel
summed, as the contributions use them), over the probe images:

- *contrast*: ``L(c)`` is the mean over the images holding c of (mean of y
  over c's cells minus mean of y over the image). It equals ``sum_n w[n]
  contrast(n, c)`` of the alignment table.
- *regression*: y regressed on all concept masks of an image at once, with
  one intercept per image (every mask and y centred within its image), so a
  concept's coefficient is how much higher the logit is on its cells than it
  would be from the other concepts there. An attribute whose box is its
  object's box gets its own coefficient wherever the attribute is seen on
  other objects and the object with other attributes. Least squares pooled
  over images: ``(G + lambda I) b = r`` with ``G = sum_i X_i X_i^T`` and ``r =
  sum_i X_i y_i`` (X_i the centred K' x cells masks), ``lambda`` = ``ridge``
  times the mean of G's diagonal; a concept without cells gets 0.

Intervals: Poisson bootstrap over probe images with the replicate weights of
the dissection (`saldissect.analysis.dissection.poisson_weights`, the same
``(seed, image)`` streams, so replicate r resamples the same images for every
readout). The contrast's replicates are exact; the regression's are its
first-order (one-step) expansion ``b_r = b + G^-1 sum_i (W[r, i] - 1) X_i (y_i
- X_i^T b)``, which needs b, hence a second pass over the probe images.
Memory: K x K for G (float64: 32 MB at K = 2,000) and R x K for the
replicates; nothing per image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from saldissect.analysis.dissection import ConceptIndex, poisson_weights
from saldissect.core.io import SCHEMAS
from saldissect.data.datasets import ImageDataset
from saldissect.models.networks import SaliencyModel

log = logging.getLogger(__name__)


def centred(y: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """``y`` B x cells and ``masks`` B x K' x cells (float), each centred within its image."""
    return y - y.mean(-1, keepdim=True), masks - masks.mean(-1, keepdim=True)


def image_contrast(y: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Per image and concept, mean of y on the concept's cells minus its image mean
    (B x K', 0 where absent), and whether the concept has a cell there (B x K')."""
    cells = masks.sum(-1)
    inside = torch.einsum("bkj,bj->bk", masks, y) / cells.clamp_min(1)
    occurs = cells > 0
    return (inside - y.mean(-1, keepdim=True)) * occurs, occurs


def solve(gram: Tensor, moment: Tensor, ridge: float) -> tuple[Tensor, Tensor]:
    """Coefficients of ``(G + lambda I) b = r`` over the concepts with cells (0 for
    the others) and the inverse of the regularised G on them (zero elsewhere)."""
    active = torch.diagonal(gram) > 0
    k = int(active.sum())
    coef = torch.zeros_like(moment)
    inverse = torch.zeros_like(gram)
    if not k:
        return coef, inverse
    sub = gram[active][:, active]
    sub = sub + ridge * torch.diagonal(sub).mean() * torch.eye(k, dtype=sub.dtype)
    inv = torch.linalg.inv(sub)
    coef[active] = inv @ moment[active]
    inverse[active.nonzero()[:, 0][:, None], active.nonzero()[:, 0][None, :]] = inv
    return coef, inverse


#: One batch of the probe set: the logit y (B x cells), the masks of the concepts
#: present (B x K' x cells, float), their vocabulary indices (K') and the batch's
#: probe rows (B).
Batch = tuple[Tensor, Tensor, Tensor, Tensor]


@torch.no_grad()
def readout_statistics(
    batches: Callable[[str], Iterable[Batch]],
    n_concepts: int,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    ridge: float = 1e-4,
) -> dict[str, np.ndarray]:
    """Both readouts of ``n_concepts`` concepts from ``batches(desc)``, an iterable
    of `Batch` that can be walked twice (the regression's bootstrap is a second
    pass). Returns arrays of length K: n_images, contrast, regression and, with
    ``bootstrap`` replicates, their ``_low`` / ``_high`` percentile bounds (NaN
    without)."""
    k = n_concepts
    gram = torch.zeros(k, k, dtype=torch.float64)
    moment = torch.zeros(k, dtype=torch.float64)
    contrast_sum = torch.zeros(bootstrap + 1, k, dtype=torch.float64)  # row 0: the estimate
    contrast_n = torch.zeros_like(contrast_sum)

    def weighted(description: str):
        for y, masks, cols, rows in batches(description):
            replicate = torch.ones(1, len(rows), dtype=torch.float64)
            if bootstrap:
                replicate = torch.cat([replicate, poisson_weights(seed, rows, bootstrap)])
            yc, xc = centred(y.float(), masks.float())
            yield y.float(), masks.float(), yc, xc, torch.as_tensor(cols).cpu(), replicate

    for y, masks, yc, xc, cols, replicate in weighted("readouts"):
        difference, occurs = image_contrast(y, masks)
        contrast_sum[:, cols] += replicate @ difference.double().cpu()
        contrast_n[:, cols] += replicate @ occurs.double().cpu()
        gram[cols[:, None], cols[None, :]] += torch.einsum("bkj,blj->kl", xc, xc).double().cpu()
        moment[cols] += torch.einsum("bkj,bj->k", xc, yc).double().cpu()
    coef, inverse = solve(gram, moment, ridge)
    contrast = torch.where(contrast_n > 0, contrast_sum / contrast_n.clamp_min(1e-12), 0.0)
    out = {
        "n_images": contrast_n[0].numpy().astype(np.int64),
        "contrast": contrast[0].numpy(),
        "regression": coef.numpy(),
    }
    if not bootstrap:
        for name in ("contrast", "regression"):
            out[f"{name}_low"] = out[f"{name}_high"] = np.full(k, np.nan)
        return out
    shifts = torch.zeros(bootstrap, k, dtype=torch.float64)
    for _, _, yc, xc, cols, replicate in weighted("regression bootstrap"):
        xc, yc = xc.double().cpu(), yc.double().cpu()
        residual = yc - torch.einsum("bkj,k->bj", xc, coef[cols])
        shifts[:, cols] += (replicate[1:] - 1.0) @ torch.einsum("bkj,bj->bk", xc, residual)
    alpha = (1.0 - confidence) / 2.0
    replicates = coef[None, :] + shifts @ inverse.T
    for name, values in (("contrast", contrast[1:]), ("regression", replicates)):
        out[f"{name}_low"], out[f"{name}_high"] = np.quantile(
            values.numpy(), [alpha, 1.0 - alpha], axis=0
        )
    return out


@torch.no_grad()
def concept_readouts(
    model: SaliencyModel,
    probe: pd.DataFrame,
    concepts: pd.DataFrame,
    weights: Tensor,
    size: tuple[int, int],
    *,
    min_cover: float,
    batch_size: int,
    device: torch.device,
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    ridge: float = 1e-4,
    num_workers: int = 0,
) -> pd.DataFrame:
    """The contrast and regression readouts of every concept of the vocabulary
    (`readout_statistics` over the probe set), a ``readouts`` table (io.SCHEMAS).
    ``weights`` are the N basis weights."""
    model.eval()
    probe = probe.reset_index(drop=True)
    index = ConceptIndex(probe, concepts)
    w = weights.to(device=device, dtype=torch.float32)
    loader = DataLoader(ImageDataset(probe, size), batch_size=batch_size, num_workers=num_workers)

    def batches(description: str) -> Iterator[Batch]:
        for batch in tqdm(loader, desc=description, disable=None):
            prob = model(batch["image"].to(device))["prob"].float()
            masks, present = index.batch_masks(
                batch["index"].numpy(), tuple(prob.shape[2:]), min_cover, device
            )
            y = torch.einsum("n,bnj->bj", w, prob.flatten(2))
            yield y, masks.flatten(2).float(), torch.as_tensor(present), batch["index"]

    statistics = readout_statistics(
        batches,
        len(index.vocabulary),
        bootstrap=bootstrap,
        seed=seed,
        confidence=confidence,
        ridge=ridge,
    )
    log.info(
        "readouts of %d concepts over %d probe images, %d bootstrap replicates",
        len(index.vocabulary),
        len(probe),
        bootstrap,
    )
    return index.vocabulary.assign(**statistics)[list(SCHEMAS["readouts"])]
