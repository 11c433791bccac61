"""Input validation before any training: every problem, one line each, file and reason.

`index_salicon_split` and `index_visual_genome` read a dataset the way the
workflow does, check every sample, and return the good samples together with
a list of problems ``(file, reason)``. Problems of one sample (a missing or
truncated image, a missing map, a map of the wrong size, a constant map, a
fixation file without fixations or with points outside the image, a box of
negative size or outside its image, a probe image missing on disk) can be
skipped (config ``on_bad_sample: skip``); problems of a whole dataset (a
missing folder, an empty split, a scene-graph file that is not JSON or lacks
its keys, fewer images than a batch) always stop the run.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from saldissect.data import IMAGE_SUFFIXES, load_fixations, normalise_name
from saldissect.io import check_schema

Problem = tuple[str, str]


class InputError(ValueError):
    """Bad inputs; the message lists every problem, one per line."""

    def __init__(self, problems: list[Problem], what: str):
        self.problems = problems
        lines = "\n".join(f"  {file}: {reason}" for file, reason in problems)
        super().__init__(f"{len(problems)} problem(s) in {what}:\n{lines}")


def image_size(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """(height, width) of a fully decodable image, or a reason why not."""
    if not path.is_file():
        return None, "missing image"
    try:
        with Image.open(path) as image:
            image.load()  # decodes every byte: a truncated file raises here
            return (image.height, image.width), None
    except Exception as error:  # PIL raises several types for bad files
        return None, f"unreadable or truncated image ({str(error).splitlines()[0]})"


def check_map(path: Path, size: tuple[int, int]) -> str | None:
    saliency = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if saliency is None:
        return "unreadable saliency map"
    if saliency.shape[:2] != size:
        return (
            f"map is {saliency.shape[1]}x{saliency.shape[0]} but its image is {size[1]}x{size[0]}"
        )
    values = saliency.astype(np.float64)
    if np.isnan(values).any():
        return "map contains NaN"
    if values.max() == values.min():
        return (
            "all-zero map" if values.max() == 0 else f"constant map (every pixel {values.max():g})"
        )
    return None


def check_fixations(path: Path, size: tuple[int, int]) -> str | None:
    try:
        points = load_fixations(path, *size, keep_outside=True)
    except Exception as error:
        return f"unreadable fixation file ({str(error).splitlines()[0]})"
    if len(points) == 0:
        return "no fixations"
    height, width = size
    outside = (
        (points[:, 0] < 0) | (points[:, 0] >= height) | (points[:, 1] < 0) | (points[:, 1] >= width)
    ).sum()
    if outside:
        return f"{outside} of {len(points)} fixations outside the {width}x{height} image"
    return None


def _find(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    return next(
        (folder / f"{stem}{s}" for s in suffixes if (folder / f"{stem}{s}").is_file()), None
    )


def index_salicon_split(
    root: str | Path, split: str
) -> tuple[pd.DataFrame, list[Problem], list[Problem]]:
    """Good samples of one SALICON split, per-sample problems, dataset problems."""
    root = Path(root)
    image_dir = root / "images" / split
    columns = ["image_id", "image_path", "map_path", "fixation_path", "height", "width"]
    if not image_dir.is_dir():
        return (
            pd.DataFrame(columns=columns),
            [],
            [(str(image_dir), "SALICON image folder not found")],
        )
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        return pd.DataFrame(columns=columns), [], [(str(image_dir), f"empty split {split!r}")]
    rows, problems = [], []
    for image_path in images:
        name = image_path.stem
        size, reason = image_size(image_path)
        map_path = _find(root / "maps" / split, name, (".png", ".jpg", ".jpeg"))
        fixation_path = _find(root / "fixations" / split, name, (".mat", ".png"))
        found = []
        if reason:
            found.append((str(image_path), reason))
        if map_path is None:
            found.append(
                (str(root / "maps" / split / f"{name}.png"), f"map missing for image {name}")
            )
        elif size and (reason := check_map(map_path, size)):
            found.append((str(map_path), reason))
        if fixation_path is None:
            found.append(
                (
                    str(root / "fixations" / split / f"{name}.mat"),
                    f"fixation file missing for image {name}",
                )
            )
        elif size and (reason := check_fixations(fixation_path, size)):
            found.append((str(fixation_path), reason))
        if found:
            problems += found
        else:
            rows.append((name, str(image_path), str(map_path), str(fixation_path), *size))
    stems = {p.stem for p in images}
    orphans: dict[str, list[str]] = {}
    for kind in ("maps", "fixations"):
        folder = root / kind / split
        for orphan in sorted(folder.iterdir() if folder.is_dir() else []):
            if orphan.stem not in stems:
                orphans.setdefault(orphan.stem, []).append(orphan.name)
    for stem, files in orphans.items():
        reason = f"missing image ({' and '.join(files)} exist)"
        problems.append((str(image_dir / f"{stem}.jpg"), reason))
    return pd.DataFrame(rows, columns=columns), problems, []


def _read_json(path: Path) -> tuple[object, Problem | None]:
    try:
        with open(path) as handle:
            return json.load(handle), None
    except FileNotFoundError:
        return None, (str(path), "Visual Genome file not found")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return None, (str(path), f"not valid JSON ({str(error).splitlines()[0]})")


def index_visual_genome(
    root: str | Path,
    *,
    min_object_count: int = 1,
    min_attribute_count: int = 1,
    keep_objects: frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, pd.DataFrame, list[Problem], list[Problem]]:
    """Probe images and concept boxes from Visual Genome's native JSON.

    Returns ``probe`` (image_id, image_path, height, width), ``concepts``
    (image_id, concept, kind, x, y, w, h; an attribute carries its object's
    box), per-sample problems and dataset problems. Objects are kept if in
    ``keep_objects`` or seen at least ``min_object_count`` times; attributes at
    least ``min_attribute_count`` times.
    """
    root = Path(root)
    probe_columns = ["image_id", "image_path", "height", "width"]
    concept_columns = ["image_id", "concept", "kind", "x", "y", "w", "h"]
    empty = (pd.DataFrame(columns=probe_columns), pd.DataFrame(columns=concept_columns))
    image_data, bad_a = _read_json(root / "image_data.json")
    attributes, bad_b = _read_json(root / "attributes.json")
    fatal = [p for p in (bad_a, bad_b) if p]
    if fatal:
        return *empty, [], fatal
    sizes, problems = {}, []
    data_file, attr_file = str(root / "image_data.json"), str(root / "attributes.json")
    for i, entry in enumerate(image_data if isinstance(image_data, list) else []):
        missing = [
            k
            for k in ("image_id", "width", "height")
            if not isinstance(entry, dict) or k not in entry
        ]
        if missing:
            problems.append((data_file, f"entry {i} lacks {', '.join(missing)}"))
        else:
            sizes[int(entry["image_id"])] = (int(entry["height"]), int(entry["width"]))
    if not isinstance(image_data, list) or not isinstance(attributes, list):
        return (
            *empty,
            [],
            [
                (
                    data_file if not isinstance(image_data, list) else attr_file,
                    "expected a list of per-image entries",
                )
            ],
        )
    rows, bad_images = [], set()
    for i, entry in enumerate(attributes):
        if not isinstance(entry, dict) or "image_id" not in entry or "attributes" not in entry:
            problems.append((attr_file, f"entry {i} lacks image_id or attributes"))
            continue
        image_id = int(entry["image_id"])
        if image_id not in sizes:
            problems.append((attr_file, f"image {image_id} is not in image_data.json"))
            bad_images.add(image_id)
            continue
        height, width = sizes[image_id]
        for obj in entry["attributes"]:
            if not all(k in obj for k in ("x", "y", "w", "h", "names")):
                problems.append((attr_file, f"image {image_id}: object lacks x, y, w, h or names"))
                bad_images.add(image_id)
                continue
            x, y, w, h = (obj[k] for k in ("x", "y", "w", "h"))
            if w <= 0 or h <= 0:
                problems.append(
                    (
                        attr_file,
                        f"image {image_id} object {obj.get('object_id')}: "
                        f"box of negative or zero size ({x}, {y}, {w}, {h})",
                    )
                )
                bad_images.add(image_id)
                continue
            if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
                problems.append(
                    (
                        attr_file,
                        f"image {image_id} object {obj.get('object_id')}: box "
                        f"({x}, {y}, {w}, {h}) outside the {width}x{height} image",
                    )
                )
                bad_images.add(image_id)
                continue
            rows += [(image_id, normalise_name(n), "object", x, y, w, h) for n in obj["names"]]
            rows += [
                (image_id, normalise_name(a), "attribute", x, y, w, h)
                for a in obj.get("attributes", []) or []
            ]
    image_dir = root / "images"
    present = {}
    for image_id in sorted({r[0] for r in rows} - bad_images):
        path = image_dir / f"{image_id}.jpg"
        if not path.is_file():
            problems.append((str(path), f"image {image_id} of the scene graph is missing"))
        elif reason := image_size(path)[1]:
            problems.append((str(path), reason))
        else:
            present[image_id] = str(path)
    concepts = pd.DataFrame([r for r in rows if r[0] in present], columns=concept_columns)
    counts = Counter(zip(concepts["concept"], concepts["kind"], strict=True))
    keep = [
        (kind == "object" and (name in keep_objects or counts[(name, kind)] >= min_object_count))
        or (kind == "attribute" and counts[(name, kind)] >= min_attribute_count)
        for name, kind in zip(concepts["concept"], concepts["kind"], strict=True)
    ]
    concepts = concepts[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    ids = sorted(set(concepts["image_id"]))
    probe = pd.DataFrame([(i, present[i], *sizes[i]) for i in ids], columns=probe_columns)
    return check_schema(probe, "probe"), check_schema(concepts, "concepts"), problems, []


def read_salicon_split(root: str | Path, split: str) -> pd.DataFrame:
    """A SALICON split with every sample checked; raises `InputError` listing all problems."""
    table, problems, fatal = index_salicon_split(root, split)
    if fatal or problems:
        raise InputError(fatal + problems, f"SALICON split {split!r} under {root}")
    return check_schema(table, "split")


def read_visual_genome(root: str | Path, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Visual Genome probe set and concepts; raises `InputError` listing all problems."""
    probe, concepts, problems, fatal = index_visual_genome(root, **options)
    if fatal or problems:
        raise InputError(fatal + problems, f"Visual Genome under {root}")
    return probe, concepts
