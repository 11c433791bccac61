"""Network-dissection style examples: where a ranked concept's best basis fires.

Split in two so the figure is drawn from Parquet only (the figure is
`saldissect.report.examples`):

- `collect_examples` runs the model once over a bounded set of probe images
  and keeps, for each of the top positive and negative concepts, the images
  where the concept's best-aligned basis has the highest IoU with the
  concept's mask (the same IoU the dissection uses: `ConceptIndex` masks on
  the feature grid, `intersection_union`, images whose mask is empty on the
  grid are skipped), together with that basis's probability map;
- `plot_examples` draws them: image, probability map overlaid, the region
  above the basis threshold outlined in white and the concept's boxes.

A concept's basis is the argmax over bases of the alignment ``score``
(ties: lowest basis, then kind in alphabetical order); its mask uses the
boxes of that (concept, kind) pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from saldissect.core.io import SCHEMAS

if TYPE_CHECKING:
    import torch

EXAMPLE_COLUMNS = SCHEMAS["examples"]


def _chosen_concepts(
    contributions: pd.DataFrame, alignment: pd.DataFrame, n_concepts: int, score: str
) -> pd.DataFrame:
    """Ranks 1..n then -1..-n, with each concept's best basis and its kind."""
    ranks = list(range(1, n_concepts + 1)) + list(range(-1, -n_concepts - 1, -1))
    chosen = contributions[contributions["rank"].isin(ranks)].copy()
    chosen["order"] = [ranks.index(int(r)) for r in chosen["rank"]]
    chosen = chosen.sort_values("order")
    aligned = alignment[alignment[score].notna()].sort_values(
        [score, "basis", "kind"], ascending=[False, True, True], kind="stable"
    )
    best = aligned.drop_duplicates("concept")[["concept", "kind", "basis"]]
    chosen = chosen.merge(best, on="concept", how="inner", validate="one_to_one")
    return chosen[["concept", "kind", "category", "rank", "basis"]].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in EXAMPLE_COLUMNS})
    integers = {c: np.int64 for c in ("rank", "basis", "map_height", "map_width")}
    return frame.astype({**integers, "iou": np.float64, "threshold": np.float64})


def collect_examples(
    model: torch.nn.Module,
    probe: pd.DataFrame,
    concepts: pd.DataFrame,
    thresholds: torch.Tensor,
    contributions: pd.DataFrame,
    alignment: pd.DataFrame,
    size: tuple[int, int],
    *,
    n_concepts: int = 3,
    n_images: int = 4,
    max_scan: int = 64,
    min_cover: float,
    batch_size: int,
    device: torch.device | str,
    score: str = "mean_iou",
    num_workers: int = 0,
) -> pd.DataFrame:
    """Best-aligned probe images of the top ranked concepts, with their basis maps.

    Concepts: ranks 1..``n_concepts`` and -1..-``n_concepts`` of
    ``contributions`` (fewer when not ranked). For each, the first
    ``max_scan`` probe images (probe order) holding the concept are scanned;
    one forward pass per image serves every concept. The ``n_images``
    images with the highest IoU of the concept's basis mask with the concept
    mask are kept (ties: probe order). Returns one row per (concept, image),
    concepts in rank order (positive first), images by decreasing IoU, with
    columns `EXAMPLE_COLUMNS`; ``map`` is the basis probability map on the
    feature grid, flattened row-major as float32.
    """
    # torch is imported here: the figure (`plot_examples`) is drawn without it.
    import torch
    from torch.utils.data import DataLoader

    from saldissect.analysis.dissection import ConceptIndex, intersection_union
    from saldissect.data.datasets import ImageDataset

    chosen = _chosen_concepts(contributions, alignment, n_concepts, score)
    probe = probe.reset_index(drop=True)
    if not len(chosen) or n_images < 1 or max_scan < 1:
        return _empty()

    # The first max_scan probe rows holding each chosen (concept, kind).
    position = pd.Series(np.arange(len(probe)), index=probe["image_id"].to_numpy())
    scan: list[np.ndarray] = []
    for row in chosen.itertuples():
        ids = concepts.loc[
            (concepts["concept"] == row.concept) & (concepts["kind"] == row.kind), "image_id"
        ].unique()
        rows = position.reindex(ids).dropna().to_numpy(np.int64)
        scan.append(np.sort(rows)[:max_scan])
    rows = np.unique(np.concatenate(scan))
    if not len(rows):
        return _empty()

    subset = probe.iloc[rows].reset_index(drop=True)  # still in probe order
    keys = pd.MultiIndex.from_frame(chosen[["concept", "kind"]])
    wanted = pd.MultiIndex.from_frame(concepts[["concept", "kind"]]).isin(keys)
    index = ConceptIndex(subset, concepts[wanted])
    # vocabulary index -> position in `chosen`
    slot_of = keys.get_indexer(pd.MultiIndex.from_frame(index.vocabulary))
    scanned = [np.isin(np.arange(len(subset)), np.searchsorted(rows, s)) for s in scan]

    model.eval()
    thresholds = thresholds.to(device).float()
    loader = DataLoader(ImageDataset(subset, size), batch_size=batch_size, num_workers=num_workers)
    best: list[list[tuple[float, int, np.ndarray]]] = [[] for _ in range(len(chosen))]
    grid = None
    for batch in loader:
        with torch.no_grad():
            prob = model(batch["image"].to(device))["prob"].float()
        if prob.shape[1] != len(thresholds):
            raise ValueError(f"model gives {prob.shape[1]} bases but {len(thresholds)} thresholds")
        grid = tuple(prob.shape[2:])
        local = batch["index"].numpy()
        masks, present = index.batch_masks(local, grid, min_cover, device)
        if not len(present):
            continue
        slots = slot_of[present]
        bases = torch.as_tensor(chosen["basis"].to_numpy()[slots], device=prob.device)
        # Each present concept against its own basis: the diagonal of K' x K'.
        inter, union = intersection_union(prob[:, bases], thresholds[bases], masks)
        inter, union = inter.diagonal(dim1=1, dim2=2), union.diagonal(dim1=1, dim2=2)
        scores = torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))
        occurs = masks.flatten(2).any(2).cpu().numpy()  # B x K'
        scores = scores.cpu().numpy()
        maps = prob[:, bases].cpu().numpy().astype(np.float32)  # B x K' x h x w
        for k, slot in enumerate(slots):
            keep = occurs[:, k] & scanned[slot][local]
            for b in np.flatnonzero(keep):
                best[slot].append((float(scores[b, k]), int(local[b]), maps[b, k].ravel()))
            best[slot] = sorted(best[slot], key=lambda t: (-t[0], t[1]))[:n_images]

    records = []
    for slot, row in enumerate(chosen.itertuples()):
        for value, local_row, flat in best[slot]:
            image = subset.iloc[local_row]
            records.append(
                {
                    "concept": row.concept,
                    "category": row.category,
                    "rank": int(row.rank),
                    "basis": int(row.basis),
                    "image_id": image["image_id"],
                    "image_path": str(image["image_path"]),
                    "iou": value,
                    "threshold": float(thresholds[int(row.basis)]),
                    "map_height": int(grid[0]),
                    "map_width": int(grid[1]),
                    "map": flat.copy(),
                }
            )
    if not records:
        return _empty()
    return pd.DataFrame.from_records(records, columns=list(EXAMPLE_COLUMNS))


# ----------------------------------------------------------------------- figure
