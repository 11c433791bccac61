"""Interactions: self-attention over grid cells during reformulation (docs/method.md 6).

The interaction variant of phase two keeps phase one frozen and reads its
probability maps ``P`` (B x N x h x w) as ``hw`` tokens of N values:

- queries ``Q = Linear_{N->d}(P^T)`` and keys ``K = Linear_{N->d}(P^T)``;
- attention ``A = softmax(Q K^T)`` over grid cells (hw x hw per image, rows
  sum to 1; no ``1/sqrt(d)`` scale, as in the reference);
- ``X = A P^T`` (hw x N) and saliency ``upsample(sigmoid(conv1x1_{N->1}(X)))``;
  with ``interaction.readout: split`` (not the reference's) the logit adds a
  second 1x1 readout of the cell's own ``P``, so that what a cell attends to
  can raise it above every cell it attends to (a convex mixture cannot).

Only the queries, keys and the 1x1 conv train. Conventions of the analyses:

- *spatial alignment*: ``m(j) = sum_i s(i) A(i, j)`` with ``s`` the
  ground-truth map averaged onto the grid; ``m`` is upsampled to the image
  size, multiplied by the evaluation's centre bias and scored against the
  ground truth (CC, SIM, KLD, NSS of `saldissect.core.metrics`);
- *basis interactions*: ``Pb = P > tau`` (hw x N), per image
  ``I = Pb^T A Pb`` (N x N: the attention mass flowing from cells where basis n
  is active to cells where basis m is active); each row is normalised to sum
  1 (rows of bases absent from the image stay 0), rows are summed over
  images, then each row is divided by its maximum;
- *semantic interactions*: ``S(c1, c2) = sum_{n,m} I(n, m) beta(n, c1)
  beta(m, c2)`` with ``beta`` the top-k normalised alignment of
  `saldissect.analysis.contributions.beta`; row ``c1`` (source) says where cells of
  ``c1`` look, column ``c2`` (target) what they look at.

Memory: the analyses never hold ``A`` whole for a batch; they walk over
blocks of query rows sized to a memory budget (``attention_mb``), so a 60 x 80
grid (4800 x 4800 attention, 92 MB per image in float32) stays bounded
(`bench/interaction_memory.py`). Training uses fused attention
(`torch.nn.functional.scaled_dot_product_attention`), which avoids holding
``A`` where the backend allows it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as nnf
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from saldissect.analysis.contributions import beta as top_k_beta
from saldissect.analysis.dissection import ConceptIndex
from saldissect.core import metrics
from saldissect.core.io import load_checkpoint
from saldissect.data.datasets import (
    ImageDataset,
    SaliencyDataset,
    fixation_map,
    load_fixations,
    read_saliency_map,
)
from saldissect.models.networks import SaliencyModel
from saldissect.training.train import fit_on_frozen_maps, load_model, start_training

log = logging.getLogger(__name__)

ALIGNMENT_METRICS = ("cc", "sim", "kld", "nss")


# ------------------------------------------------------------------------ model
#: ``attended``: the reference's ``conv1x1(A P^T)``; ``split``: ``conv1x1(A P^T) +
#: conv1x1'(P)``, a cell's own maps read apart from what it attends to.
READOUTS = ("attended", "split")


class InteractionHead(nn.Module):
    """Queries, keys and the 1x1 readout of the interaction variant.

    ``forward(prob, size)`` maps probability maps B x N x h x w to saliency
    B x 1 x H x W at ``size``. Submodule names (``query``, ``key``,
    ``readout``) are stable: checkpoints and analyses rely on them.
    """

    def __init__(self, n_bases: int, *, dim: int = 256, readout: str = "attended") -> None:
        super().__init__()
        if n_bases < 1 or dim < 1:
            raise ValueError(f"n_bases and dim must be positive, got {n_bases} and {dim}")
        if readout not in READOUTS:
            raise ValueError(f"readout {readout!r}: one of {READOUTS}")
        self.query = nn.Linear(n_bases, dim)
        self.key = nn.Linear(n_bases, dim)
        self.readout = nn.Conv2d(n_bases, 1, 1, bias=False)
        # readout "split": a cell's own maps get a 1x1 readout of their own
        self.own = nn.Conv2d(n_bases, 1, 1, bias=False) if readout == "split" else None
        self.n_bases, self.dim, self.kind = n_bases, dim, readout

    def tokens(self, prob: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``P^T`` (B x hw x N), ``Q`` and ``K`` (B x hw x d)."""
        if prob.ndim != 4 or prob.shape[1] != self.n_bases:
            raise ValueError(
                f"expected B x {self.n_bases} x h x w probability maps, got {tuple(prob.shape)}"
            )
        tokens = prob.flatten(2).transpose(1, 2)
        return tokens, self.query(tokens), self.key(tokens)

    def attend(self, prob: Tensor) -> Tensor:
        """``X = A P^T`` reshaped to B x N x h x w, without materialising ``A``."""
        tokens, q, k = self.tokens(prob)
        mixed = nnf.scaled_dot_product_attention(q, k, tokens, scale=1.0)
        return mixed.transpose(1, 2).reshape(prob.shape)

    def logit(self, prob: Tensor) -> Tensor:
        """The saliency logit on the grid, B x 1 x h x w (the own readout added for
        ``split``)."""
        logit = self.readout(self.attend(prob))
        if self.own is not None:
            logit = logit + self.own(prob)
        return logit

    def forward(self, prob: Tensor, size: tuple[int, int]) -> Tensor:
        saliency = torch.sigmoid(self.logit(prob))
        if tuple(saliency.shape[-2:]) == tuple(size):
            return saliency
        return nnf.interpolate(saliency, size=size, mode="bilinear", align_corners=False)


def attention(head: InteractionHead, prob: Tensor) -> Tensor:
    """The full attention ``A`` (B x hw x hw); for tests and small grids only."""
    _, q, k = head.tokens(prob)
    return torch.softmax(q @ k.transpose(1, 2), dim=-1)


def chunk_rows(batch: int, cells: int, attention_mb: float) -> int:
    """Query rows per block so that one B x rows x hw float32 block fits ``attention_mb``."""
    return int(max(1, min(cells, attention_mb * 2**20 // (4 * batch * cells))))


@torch.no_grad()
def attention_statistics(
    head: InteractionHead,
    prob: Tensor,
    thresholds: Tensor,
    weights: Tensor,
    *,
    attention_mb: float = 256.0,
) -> tuple[Tensor, Tensor]:
    """Saliency-weighted attention and per-image basis interactions, block by block.

    ``prob`` B x N x h x w, ``thresholds`` N, ``weights`` (the map ``s`` on the
    grid) B x h x w. Returns ``m`` B x h x w (``m(j) = sum_i s(i) A(i, j)``)
    and ``I`` B x N x N (``Pb^T A Pb``, not normalised). Only a block of
    ``chunk_rows`` query rows of ``A`` exists at any time.
    """
    batch, n, h, w = prob.shape
    cells = h * w
    _, q, k = head.tokens(prob)
    binary = (prob > thresholds.view(1, -1, 1, 1)).flatten(2).transpose(1, 2).to(prob.dtype)
    s = weights.reshape(batch, 1, cells).to(prob.dtype)
    spread = torch.zeros(batch, 1, cells, dtype=prob.dtype, device=prob.device)
    flows = torch.zeros(batch, n, n, dtype=prob.dtype, device=prob.device)
    rows = chunk_rows(batch, cells, attention_mb)
    keys = k.transpose(1, 2)
    for start in range(0, cells, rows):
        stop = min(cells, start + rows)
        block = _softmax_(q[:, start:stop] @ keys)  # B x rows x hw
        spread += s[:, :, start:stop] @ block
        flows += binary[:, start:stop].transpose(1, 2) @ (block @ binary)
        del block
    return spread.view(batch, h, w), flows


def _softmax_(logits: Tensor) -> Tensor:
    """Softmax over the last dimension in place: one block of memory, not two."""
    logits -= logits.amax(-1, keepdim=True)
    logits.exp_()
    logits /= logits.sum(-1, keepdim=True)
    return logits


def normalise_rows(flows: Tensor) -> Tensor:
    """Each row divided by its sum; rows summing to 0 stay 0 (any leading batch dims)."""
    total = flows.sum(-1, keepdim=True)
    return torch.where(total > 0, flows / total.clamp_min(1e-30), torch.zeros_like(flows))


def scale_rows_by_max(matrix: Tensor) -> Tensor:
    """Each row divided by its maximum; rows whose maximum is not positive stay as they are."""
    top = matrix.max(-1, keepdim=True).values
    return torch.where(top > 0, matrix / top.clamp_min(1e-30), matrix)


def basis_interactions(flows: Tensor) -> Tensor:
    """``I`` from per-image flows B x N x N: rows to sum 1 per image, summed, rows / max."""
    return scale_rows_by_max(normalise_rows(flows).sum(0))


def semantic_interactions(
    interactions: Tensor | np.ndarray, beta: pd.DataFrame, concepts: list[str] | None = None
) -> pd.DataFrame:
    """``S = beta^T I beta`` in long format (source, target, weight), concepts sorted.

    ``beta`` has columns basis, concept, beta (`saldissect.analysis.contributions.beta`);
    ``concepts`` (default: those in ``beta``) fixes the rows and columns, so a
    concept no basis credits gets a row and a column of zeros.
    """
    matrix = torch.as_tensor(np.asarray(interactions), dtype=torch.float64)
    names = sorted(set(beta["concept"]) if concepts is None else set(concepts))
    column = {c: i for i, c in enumerate(names)}
    known = beta[beta["concept"].isin(column)]
    weights = torch.zeros(matrix.shape[0], len(names), dtype=torch.float64)
    weights[
        torch.as_tensor(known["basis"].to_numpy(np.int64).copy()),
        torch.as_tensor(known["concept"].map(column).to_numpy(np.int64).copy()),
    ] = torch.as_tensor(known["beta"].to_numpy(np.float64).copy())
    semantic = (weights.T @ matrix @ weights).numpy()
    source, target = np.meshgrid(np.arange(len(names)), np.arange(len(names)), indexing="ij")
    return pd.DataFrame(
        {
            "source": np.asarray(names, dtype=object)[source.ravel()],
            "target": np.asarray(names, dtype=object)[target.ravel()],
            "weight": semantic.ravel(),
        }
    )


def long_basis_table(interactions: Tensor) -> pd.DataFrame:
    n = interactions.shape[0]
    source, target = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return pd.DataFrame(
        {
            "source": source.ravel(),
            "target": target.ravel(),
            "weight": interactions.double().cpu().numpy().ravel(),
        }
    )


# --------------------------------------------------------------------- training
def load_frozen(model_cfg: dict, checkpoint: str | Path, device: torch.device) -> SaliencyModel:
    """Phase one with every parameter frozen (its P feeds the interaction head)."""
    model = load_model(checkpoint, model_cfg, "factorised", device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def train_interaction(
    train: pd.DataFrame,
    val: pd.DataFrame,
    model_cfg: dict,
    cfg: dict,
    phase1_checkpoint: str | Path,
    out_dir: str | Path,
    *,
    dim: int,
    readout: str = "attended",
    threads: int = 1,
    device: str = "auto",
    cache: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Train queries, keys and the 1x1 readout on P of the frozen phase-one model.

    As phase two, through `saldissect.training.train.fit_on_frozen_maps`.
    ``model.pt`` holds the head only; its metadata names the phase-one
    checkpoint it reads.
    """
    out_dir, dev = start_training(out_dir, cfg, device)
    frozen = load_frozen(model_cfg, phase1_checkpoint, dev)
    head = InteractionHead(frozen.n_bases, dim=dim, readout=readout).to(dev)
    return fit_on_frozen_maps(
        frozen,
        head,
        head.parameters(),
        head,
        train,
        val,
        model_cfg,
        cfg,
        out_dir,
        {"head": "interaction", "dim": dim, "readout": readout, "phase1": str(phase1_checkpoint)},
        threads=threads,
        device=dev,
        cache=cache,
    )


def load_head(checkpoint: str | Path, n_bases: int, dim: int, device) -> InteractionHead:
    """The trained head; its readout kind from the checkpoint's metadata."""
    state = load_checkpoint(checkpoint)
    readout = state.get("meta", {}).get("readout", "attended")
    head = InteractionHead(n_bases, dim=dim, readout=readout)
    head.load_state_dict(state["model"])
    return head.to(device).eval()


# --------------------------------------------------------------------- analyses
@torch.no_grad()
def analyse(
    frozen: SaliencyModel,
    head: InteractionHead,
    images: pd.DataFrame,
    thresholds: Tensor,
    size: tuple[int, int],
    *,
    batch_size: int,
    attention_mb: float,
    center_bias_sigma: float | None,
    device: torch.device,
    num_workers: int = 0,
) -> tuple[pd.DataFrame, Tensor]:
    """Spatial alignment (metric, value, n_images) and the basis interactions ``I``.

    Scores use each image's own map and fixations at its own size, as
    `saldissect.analysis.evaluation` does.
    """
    images = images.reset_index(drop=True)
    loader = DataLoader(
        SaliencyDataset(images, size), batch_size=batch_size, num_workers=num_workers
    )
    thresholds = thresholds.to(device)
    total = torch.zeros(head.n_bases, head.n_bases, dtype=torch.float64, device=device)
    scores: dict[str, list[float]] = {m: [] for m in ALIGNMENT_METRICS}
    for batch in tqdm(loader, desc="interactions", disable=None):
        prob = frozen(batch["image"].to(device))["prob"].float()
        grid = nnf.adaptive_avg_pool2d(batch["map"].to(device), prob.shape[-2:])[:, 0]
        spread, flows = attention_statistics(
            head, prob, thresholds, grid, attention_mb=attention_mb
        )
        total += normalise_rows(flows).sum(0).double()
        for index, m in zip(batch["index"].numpy(), spread.cpu().numpy(), strict=True):
            row = images.iloc[int(index)]
            height, width = int(row.height), int(row.width)
            gt = read_saliency_map(row.map_path)
            points = load_fixations(row.fixation_path, height, width)
            pred = cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
            if center_bias_sigma:
                pred = pred * metrics.center_bias(height, width, center_bias_sigma)
            result = metrics.score_image(
                np.clip(pred, 0, None),
                gt,
                fixation_map(points, height, width),
                metrics=ALIGNMENT_METRICS,
            )
            for metric, value in result.items():
                scores[metric].append(value)
    alignment = pd.DataFrame(
        {
            "metric": list(ALIGNMENT_METRICS),
            "value": [float(np.mean(scores[m])) for m in ALIGNMENT_METRICS],
            "n_images": [len(scores[m]) for m in ALIGNMENT_METRICS],
        }
    )
    return alignment, scale_rows_by_max(total)


# ------------------------------------------------------------------ pair effects
def log_density_contrast(logit: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Per image and concept, log(mean predicted density on the concept's cells /
    mean density over the image), density = sigmoid(logit) (B x cells), and whether
    the concept has a cell (``masks`` B x K' x cells, float). Both B x K'."""
    density = torch.sigmoid(logit.double())
    density = density / density.sum(-1, keepdim=True)
    cells = masks.sum(-1).double()
    inside = torch.einsum("bkj,bj->bk", masks.double(), density) / cells.clamp_min(1)
    occurs = cells > 0
    ratio = inside / density.mean(-1, keepdim=True)
    return torch.where(occurs, torch.log(ratio.clamp_min(1e-12)), 0.0), occurs


def log_density_rest(logit: Tensor, masks: Tensor) -> Tensor:
    """Per image, source s and target t, log(mean predicted density on the cells
    outside t's, s's own cells kept / mean density over the image) (B x K' x K';
    0 where t is absent, where nothing is left, or where s is absent): the reference
    `PairEffects` takes s's contrast against, so that t's own share of the density
    is set aside. Density as in `log_density_contrast`."""
    density = torch.sigmoid(logit.double())
    density = density / density.sum(-1, keepdim=True)
    # the B x K' x cells products in the masks' float32 (no float64 copy of them)
    m, total = masks.float(), masks.shape[-1]
    mass = torch.einsum("bkj,bj->bk", m, density.float()).double()
    cells = m.sum(-1).double()
    shared_mass = torch.bmm(m * density.float()[:, None], m.transpose(1, 2)).double()
    shared = torch.bmm(m, m.transpose(1, 2)).double()  # [b, s, t]: cells of both
    left = total - cells[:, None, :] + shared  # cells outside t, or on s
    rest = (1 - mass[:, None, :] + shared_mass).clamp_min(1e-12) / left.clamp_min(1) * total
    valid = (cells[:, :, None] > 0) & (cells[:, None, :] > 0) & (left > 0)
    return torch.where(valid, torch.log(rest), 0.0)


class PairEffects:
    """Sums for the pair effect of every (source, target) pair of a vocabulary of K
    concepts (docs/method.md 6, "Pair effects"), one image at a time, K x K each.

    ``update(difference, cols, masks, rest)``: per image, ``difference`` the
    interaction variant's `log_density_contrast` minus phase two's (B x K'), ``cols``
    the K' vocabulary indices, ``masks`` the concepts' cells (B x K' x cells; a concept
    occurs where it has one), ``rest`` the variant's `log_density_rest` minus phase
    two's (B x K' x K'; None: 0). Entry [s, t] accumulates the source s's difference
    over the images holding s, split by whether t is there too, *apart* from s: at
    least ``APART`` of t's cells outside s's. An image where t lies on s only (an
    attribute and the object that carries it, a background behind a source that
    covers it) is in neither side: what it compares is one thing's make-up, not a pair.
    With t apart, s's contrast is taken against the cells outside t's (s's own kept):
    ``difference`` of s minus ``rest`` [s, t]. A head that gives t itself more or
    less of the density than phase two moves every other concept's share with it,
    which is t's own attention, not a pair.
    """

    #: the share of the target's cells that must lie outside the source's
    APART = 0.5

    def __init__(self, n_concepts: int) -> None:
        shape = (n_concepts, n_concepts)
        self.n_with = torch.zeros(shape, dtype=torch.float64)
        self.sum_with = torch.zeros(shape, dtype=torch.float64)
        self.square_with = torch.zeros(shape, dtype=torch.float64)
        # with t apart: sums of s's difference against the rest (docstring), its square
        self.paired_with = torch.zeros(shape, dtype=torch.float64)
        self.paired_square_with = torch.zeros(shape, dtype=torch.float64)
        self.n_on = torch.zeros(shape, dtype=torch.float64)  # t present, on s only
        self.sum_on = torch.zeros(shape, dtype=torch.float64)
        self.square_on = torch.zeros(shape, dtype=torch.float64)
        self.n = torch.zeros(n_concepts, dtype=torch.float64)
        self.sum = torch.zeros(n_concepts, dtype=torch.float64)
        self.square = torch.zeros(n_concepts, dtype=torch.float64)

    def update(
        self, difference: Tensor, cols: Tensor, masks: Tensor, rest: Tensor | None = None
    ) -> None:
        m = (masks.flatten(2) > 0).double().cpu()
        cells = m.sum(-1)  # B x K'
        o = (cells > 0).double()
        d = difference.double().cpu() * o
        shared = m @ m.transpose(1, 2)  # [b, s, t]: cells of both
        outside = cells[:, None, :] - shared  # [b, s, t]: t's cells outside s's
        both = o[:, :, None] * o[:, None, :]
        apart = both * (outside >= self.APART * cells[:, None, :]).double()
        on = both - apart
        index = (cols[:, None], cols[None, :])
        for (n, total, square), weight in (
            ((self.n_with, self.sum_with, self.square_with), apart),
            ((self.n_on, self.sum_on, self.square_on), on),
        ):
            n[index] += weight.sum(0)  # [s, t]
            total[index] += torch.einsum("bs,bst->st", d, weight)
            square[index] += torch.einsum("bs,bst->st", d * d, weight)
        paired = d[:, :, None] - (0.0 if rest is None else rest.double().cpu())
        self.paired_with[index] += (paired * apart).sum(0)
        self.paired_square_with[index] += (paired * paired * apart).sum(0)
        self.n[cols] += o.sum(0)
        self.sum[cols] += d.sum(0)
        self.square[cols] += (d * d).sum(0)

    def table(self, names: list[str], min_images: int) -> pd.DataFrame:
        """Long table: source, target, pair_effect (mean difference of the source with
        the target apart from it minus without the target), pair_z (Welch's t of
        it), n_with, n_without; NaN where either side has fewer than ``min_images``
        images or source == target."""
        n1 = self.n_with
        n0 = self.n[:, None] - n1 - self.n_on
        # with t apart, s's difference against the rest; without t, against the image
        mean1 = self.paired_with / n1.clamp_min(1)
        mean0 = (self.sum[:, None] - self.sum_with - self.sum_on) / n0.clamp_min(1)
        var1 = (self.paired_square_with / n1.clamp_min(1) - mean1**2).clamp_min(0)
        square0 = self.square[:, None] - self.square_with - self.square_on
        var0 = (square0 / n0.clamp_min(1) - mean0**2).clamp_min(0)
        var1, var0 = var1 * n1 / (n1 - 1).clamp_min(1), var0 * n0 / (n0 - 1).clamp_min(1)
        effect = mean1 - mean0
        z = effect / torch.sqrt(var1 / n1.clamp_min(1) + var0 / n0.clamp_min(1)).clamp_min(1e-12)
        valid = (n1 >= min_images) & (n0 >= min_images)
        valid &= ~torch.eye(len(names), dtype=torch.bool)
        effect = torch.where(valid, effect, torch.nan)
        z = torch.where(valid, z, torch.nan)
        source, target = np.meshgrid(np.arange(len(names)), np.arange(len(names)), indexing="ij")
        labels = np.asarray(names, dtype=object)
        return pd.DataFrame(
            {
                "source": labels[source.ravel()],
                "target": labels[target.ravel()],
                "pair_effect": effect.numpy().ravel(),
                "pair_z": z.numpy().ravel(),
                "n_with": n1.numpy().ravel().astype(np.int64),
                "n_without": n0.numpy().ravel().astype(np.int64),
            }
        )


@torch.no_grad()
def pair_effects(
    frozen: SaliencyModel,
    head: InteractionHead,
    basis_weights: Tensor,
    probe: pd.DataFrame,
    concepts: pd.DataFrame,
    size: tuple[int, int],
    *,
    min_cover: float,
    min_images: int,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> pd.DataFrame:
    """The pair effects of every pair of concepts over the probe images (`PairEffects`):
    the interaction variant's log density contrast on the source minus phase two's
    (the linearised logit ``sum_n w[n] P[n]``, which sees no pair the attention could
    carry), with the target present against without. Concepts are named alone; a
    name seen as two kinds keeps the kind seen in more images."""
    index = ConceptIndex(probe.reset_index(drop=True), concepts)
    names = list(index.vocabulary["concept"])
    effects = PairEffects(len(names))
    loader = DataLoader(
        ImageDataset(probe.reset_index(drop=True), size),
        batch_size=batch_size,
        num_workers=num_workers,
    )
    w = basis_weights.to(device=device, dtype=torch.float32)
    for batch in tqdm(loader, desc="pair effects", disable=None):
        prob = frozen(batch["image"].to(device))["prob"].float()
        masks, present = index.batch_masks(
            batch["index"].numpy(), tuple(prob.shape[2:]), min_cover, device
        )
        masks = masks.flatten(2).float()
        attended = head.logit(prob).flatten(1)
        plain = torch.einsum("n,bnj->bj", w, prob.flatten(2))
        difference = (
            log_density_contrast(attended, masks)[0] - log_density_contrast(plain, masks)[0]
        )
        rest = log_density_rest(attended, masks) - log_density_rest(plain, masks)
        effects.update(difference, torch.as_tensor(present), masks, rest)
    table = effects.table(names, min_images)
    kinds = index.vocabulary.assign(n=effects.n.numpy())
    kept = set(kinds.sort_values("n", ascending=False).drop_duplicates("concept").index)
    keep = np.isin(np.arange(len(names)), sorted(kept))
    rows = np.outer(keep, keep).ravel()
    return table[rows].reset_index(drop=True)


def with_pair_effects(semantic: pd.DataFrame, effects: pd.DataFrame) -> pd.DataFrame:
    """The semantic interactions with each pair's effect, z and image counts
    (NaN and 0 for pairs the probe set does not hold)."""
    merged = semantic.merge(effects, on=["source", "target"], how="left")
    for column in ("n_with", "n_without"):
        merged[column] = merged[column].fillna(0).astype(np.int64)
    return merged


def semantic_from_alignment(
    interactions: Tensor, alignment: pd.DataFrame, *, top_k: int, score: str
) -> pd.DataFrame:
    """``S`` over every concept of the alignment table, with the contributions' beta."""
    return semantic_interactions(
        interactions.cpu(), top_k_beta(alignment, top_k, score), sorted(set(alignment["concept"]))
    )
