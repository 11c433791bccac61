"""Artifacts on disk: Parquet tables with checked schemas, checkpoints, atomic writes.

Every table the workflow writes has its columns declared once here
(`SCHEMAS`); `write_parquet` refuses a frame whose columns differ. Every
file is written to a temporary name beside the target and renamed into place,
so a killed job never leaves a truncated artifact that looks complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from saldissect.core.errors import UserError

#: Image files the readers take (SALICON's layout, Visual Genome's, an import's).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

#: The contrast and regression readouts with their intervals
#: (`saldissect.analysis.readouts`), in readouts.parquet and contributions.parquet.
READOUT_COLUMNS = (
    "contrast",
    "contrast_low",
    "contrast_high",
    "regression",
    "regression_low",
    "regression_high",
)
SCHEMAS: dict[str, tuple[str, ...]] = {
    "split": ("image_id", "image_path", "map_path", "fixation_path", "height", "width"),
    "probe": ("image_id", "image_path", "height", "width"),
    "concepts": ("image_id", "concept", "kind", "x", "y", "w", "h"),
    "planted": ("concept", "category", "kind", "weight"),
    "rejects": ("file", "reason"),
    "history": ("epoch", "split", "loss", "cc", "nss", "kld", "sim", "lr", "seconds"),
    "basis_weights": ("basis", "weight"),
    "thresholds": ("basis", "threshold", "quantile", "active_fraction"),
    "alignment": (
        "basis",
        "concept",
        "kind",
        "mean_iou",
        "pooled_iou",
        "intersection",
        "union",
        "n_images",
        "contrast",
    ),
    "alignment_bootstrap": ("replicate", "basis", "concept", "kind", "value"),
    "metrics": ("variant", "metric", "value", "n_images", "averaging"),
    "image_scores": ("variant", "image_id", "metric", "value", "n_fixations"),
    "contributions": (
        "concept",
        "category",
        "contribution",
        "normalized",
        "rank",
        "contribution_low",
        "contribution_high",
        "normalized_low",
        "normalized_high",
        *READOUT_COLUMNS,
    ),
    "readouts": ("concept", "kind", "n_images", *READOUT_COLUMNS),
    "categories": ("category", "contribution", "contribution_low", "contribution_high"),
    "failures": (
        "concept",
        "category",
        "n_worst",
        "n_best",
        "n_worst_images",
        "n_best_images",
        "odds_ratio",
        "ci_low",
        "ci_high",
        "p_value",
    ),
    "failure_images": ("image_id", "value", "group"),
    "examples": (
        "concept",
        "category",
        "rank",
        "basis",
        "image_id",
        "image_path",
        "iou",
        "threshold",
        "map_height",
        "map_width",
        "map",
    ),
    "recovery": (
        "dataset",
        "model",
        "control",
        "readout",
        "n_concepts",
        "spearman",
        "spearman_p",
        "n_signed",
        "sign_agreement",
        "min_abs_weight",
        "wrong_signs",
        "interaction",
        "interaction_rank",
        "interaction_row",
        "pair_z_rank",
        "pair_z",
        "max_pair_z",
        "status",
    ),
    "sweep_concepts": (
        "concept",
        "category",
        "kind",
        "weight",
        "contribution",
        "dataset",
        "readout",
        "world",
    ),
    "interaction_alignment": ("metric", "value", "n_images"),
    "basis_interactions": ("source", "target", "weight"),
    "semantic_interactions": (
        "source",
        "target",
        "weight",
        "pair_effect",
        "pair_z",
        "n_with",
        "n_without",
    ),
}


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | Path, writer: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        writer(tmp)


def check_schema(frame: pd.DataFrame, schema: str) -> pd.DataFrame:
    expected = SCHEMAS[schema]
    if tuple(frame.columns) != expected:
        raise ValueError(
            f"{schema} table has columns {list(frame.columns)}, expected {list(expected)}"
        )
    return frame


def write_parquet(frame: pd.DataFrame, path: str | Path, schema: str) -> None:
    """Write ``frame`` atomically after checking its columns against ``SCHEMAS[schema]``."""
    check_schema(frame, schema)
    write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def read_parquet(path: str | Path, schema: str, filters: list | None = None) -> pd.DataFrame:
    """A Parquet artifact, its columns checked; ``filters`` (pyarrow's, e.g.
    ``[("source", "in", names)]``) keep only matching rows, batch by batch."""
    frame = pd.read_parquet(path, filters=filters)
    try:
        return check_schema(frame, schema)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def write_table(
    frame: pd.DataFrame, csv_path: str | Path, md_path: str | Path, floatfmt: str = ".3f"
) -> None:
    """The same table as CSV (full precision) and Markdown (rounded)."""
    write_atomic(csv_path, lambda tmp: frame.to_csv(tmp, index=False))
    markdown = frame.to_markdown(index=False, floatfmt=floatfmt) + "\n"
    write_atomic(md_path, lambda tmp: tmp.write_text(markdown))


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Save a checkpoint (tensors, numbers, strings, lists, dicts only) atomically."""
    import torch  # here, so that table rules never import torch

    write_atomic(path, lambda tmp: torch.save(state, tmp))


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing or that `torch.load(weights_only=True)` refuses."""


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with ``weights_only=True``: no code runs on unpickling."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: file not found") from None
    except Exception as error:  # pickle.UnpicklingError and friends
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        # torch's first line is generic advice; the specific reason names a GLOBAL.
        specific = (line for line in lines if "GLOBAL" in line or "global" in line)
        reason = next(specific, lines[0] if lines else type(error).__name__)
        raise CheckpointError(
            f"checkpoint {path}: refused to load with weights_only=True "
            f"({reason.split('. Please')[0]})"
        ) from None
