"""Interactions: self-attention over grid cells during reformulation (docs/method.md 6).

The interaction variant of phase two keeps phase one frozen and reads its
probability maps ``P`` (B x N x h x w) as ``hw`` tokens of N values:

- queries ``Q = Linear_{N->d}(P^T)`` and keys ``K = Linear_{N->d}(P^T)``;
- attention ``A = softmax(Q K^T)`` over grid cells (hw x hw per image, rows
  sum to 1; no ``1/sqrt(d)`` scale, as in the reference);
- ``X = A P^T`` (hw x N) and saliency ``upsample(sigmoid(conv1x1_{N->1}(X)))``.

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
from saldissect.core import metrics
from saldissect.core.io import load_checkpoint
from saldissect.data.datasets import (
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
class InteractionHead(nn.Module):
    """Queries, keys and the 1x1 readout of the interaction variant.

    ``forward(prob, size)`` maps probability maps B x N x h x w to saliency
    B x 1 x H x W at ``size``. Submodule names (``query``, ``key``,
    ``readout``) are stable: checkpoints and analyses rely on them.
    """

    def __init__(self, n_bases: int, *, dim: int = 256) -> None:
        super().__init__()
        if n_bases < 1 or dim < 1:
            raise ValueError(f"n_bases and dim must be positive, got {n_bases} and {dim}")
        self.query = nn.Linear(n_bases, dim)
        self.key = nn.Linear(n_bases, dim)
        self.readout = nn.Conv2d(n_bases, 1, 1, bias=False)
        self.n_bases, self.dim = n_bases, dim

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

    def forward(self, prob: Tensor, size: tuple[int, int]) -> Tensor:
        saliency = torch.sigmoid(self.readout(self.attend(prob)))
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
    head = InteractionHead(frozen.n_bases, dim=dim).to(dev)
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
        {"head": "interaction", "dim": dim, "phase1": str(phase1_checkpoint)},
        threads=threads,
        device=dev,
        cache=cache,
    )


def load_head(checkpoint: str | Path, n_bases: int, dim: int, device) -> InteractionHead:
    head = InteractionHead(n_bases, dim=dim)
    head.load_state_dict(load_checkpoint(checkpoint)["model"])
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


def semantic_from_alignment(
    interactions: Tensor, alignment: pd.DataFrame, *, top_k: int, score: str
) -> pd.DataFrame:
    """``S`` over every concept of the alignment table, with the contributions' beta."""
    return semantic_interactions(
        interactions.cpu(), top_k_beta(alignment, top_k, score), sorted(set(alignment["concept"]))
    )
