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
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from saldissect.data import IMAGE_SUFFIXES, load_fixations
from saldissect.io import check_schema
from saldissect.vocabulary import attribute_concept, keep_mask, object_concept

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


SceneObject = dict  # x, y, w, h, names (list), attributes (list), object_id


def _visual_genome_graphs(
    root: Path, problems: list[Problem]
) -> tuple[dict, list[tuple[object, list[SceneObject]]], str, list[Problem]]:
    """Visual Genome's native JSON: image sizes from image_data.json, boxes from attributes.json."""
    image_data, bad_a = _read_json(root / "image_data.json")
    attributes, bad_b = _read_json(root / "attributes.json")
    fatal = [p for p in (bad_a, bad_b) if p]
    data_file, attr_file = str(root / "image_data.json"), str(root / "attributes.json")
    if fatal:
        return {}, [], attr_file, fatal
    for data, file in ((image_data, data_file), (attributes, attr_file)):
        if not isinstance(data, list):
            return {}, [], attr_file, [(file, "expected a list of per-image entries")]
    sizes = {}
    for i, entry in enumerate(image_data):
        missing = [
            k
            for k in ("image_id", "width", "height")
            if not isinstance(entry, dict) or k not in entry
        ]
        if missing:
            problems.append((data_file, f"entry {i} lacks {', '.join(missing)}"))
        else:
            sizes[int(entry["image_id"])] = (int(entry["height"]), int(entry["width"]))
    graphs = []
    for i, entry in enumerate(attributes):
        if not isinstance(entry, dict) or "image_id" not in entry or "attributes" not in entry:
            problems.append((attr_file, f"entry {i} lacks image_id or attributes"))
            continue
        graphs.append((int(entry["image_id"]), entry["attributes"] or []))
    return sizes, graphs, attr_file, []


def _gqa_graphs(
    root: Path, problems: list[Problem]
) -> tuple[dict, list[tuple[object, list[SceneObject]]], str, list[Problem]]:
    """GQA-style ``*sceneGraphs.json``: {image_id: {width, height, objects: {id: {...}}}}."""
    files = sorted(root.glob("*sceneGraphs.json"))
    if not files:
        return {}, [], str(root), [(str(root), "no *sceneGraphs.json file (GQA scene graphs)")]
    sizes, graphs, fatal = {}, [], []
    for path in files:
        data, bad = _read_json(path)
        if bad or not isinstance(data, dict):
            fatal.append(bad or (str(path), "expected an object of image_id -> scene graph"))
            continue
        for image_id, entry in data.items():
            image_id = str(image_id)
            if not isinstance(entry, dict) or not all(
                k in entry for k in ("width", "height", "objects")
            ):
                problems.append((str(path), f"image {image_id} lacks width, height or objects"))
                continue
            sizes[image_id] = (int(entry["height"]), int(entry["width"]))
            objects = entry["objects"] or {}
            graphs.append(
                (
                    image_id,
                    [
                        {
                            **obj,
                            "object_id": object_id,
                            "names": [obj["name"]] if "name" in obj else obj.get("names"),
                        }
                        for object_id, obj in objects.items()
                        if isinstance(obj, dict)
                    ],
                )
            )
    return sizes, graphs, str(files[0]) if len(files) == 1 else str(root), fatal


SCENE_GRAPH_READERS = {"visual_genome": _visual_genome_graphs, "gqa": _gqa_graphs}


def index_visual_genome(
    root: str | Path,
    *,
    scene_graphs: str = "visual_genome",
    images: str | Path | None = None,
    min_object_count: int = 1,
    min_attribute_count: int = 1,
    keep_coco: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, list[Problem], list[Problem]]:
    """Probe images and concept boxes from Visual Genome or GQA-style scene graphs.

    ``scene_graphs`` is ``visual_genome`` (``image_data.json`` and
    ``attributes.json``) or ``gqa`` (``*sceneGraphs.json``); images are
    ``<images>/<image_id>.jpg`` (``images`` defaults to ``root/images``).
    Returns ``probe`` (image_id, image_path, height, width), ``concepts``
    (image_id, concept, kind, x, y, w, h; an attribute carries its object's
    box), per-sample problems and dataset problems. Object names become
    singular concepts (`saldissect.vocabulary`); objects are kept if COCO
    categories (``keep_coco``) or seen at least ``min_object_count`` times,
    attributes if seen at least ``min_attribute_count`` times.
    """
    root = Path(root)
    probe_columns = ["image_id", "image_path", "height", "width"]
    concept_columns = ["image_id", "concept", "kind", "x", "y", "w", "h"]
    empty = (pd.DataFrame(columns=probe_columns), pd.DataFrame(columns=concept_columns))
    if scene_graphs not in SCENE_GRAPH_READERS:
        raise ValueError(f"unknown scene-graph format {scene_graphs!r}")
    problems: list[Problem] = []
    sizes, graphs, graph_file, fatal = SCENE_GRAPH_READERS[scene_graphs](root, problems)
    if fatal:
        return *empty, [], fatal
    rows, bad_images = [], set()
    for image_id, objects in graphs:
        if image_id not in sizes:
            problems.append((graph_file, f"image {image_id} has no size (not in image_data.json)"))
            bad_images.add(image_id)
            continue
        height, width = sizes[image_id]
        for obj in objects:
            if not isinstance(obj, dict) or not all(
                k in obj and obj[k] is not None for k in ("x", "y", "w", "h", "names")
            ):
                problems.append((graph_file, f"image {image_id}: object lacks x, y, w, h or names"))
                bad_images.add(image_id)
                continue
            x, y, w, h = (obj[k] for k in ("x", "y", "w", "h"))
            if w <= 0 or h <= 0:
                problems.append(
                    (
                        graph_file,
                        f"image {image_id} object {obj.get('object_id')}: "
                        f"box of negative or zero size ({x}, {y}, {w}, {h})",
                    )
                )
                bad_images.add(image_id)
                continue
            if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
                problems.append(
                    (
                        graph_file,
                        f"image {image_id} object {obj.get('object_id')}: box "
                        f"({x}, {y}, {w}, {h}) outside the {width}x{height} image",
                    )
                )
                bad_images.add(image_id)
                continue
            rows += [
                (image_id, object_concept(n), "object", x, y, w, h)
                for n in obj["names"]
                if object_concept(n)
            ]
            rows += [
                (image_id, attribute_concept(a), "attribute", x, y, w, h)
                for a in obj.get("attributes", []) or []
                if attribute_concept(a)
            ]
    image_dir = Path(images) if images else root / "images"
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
    keep = keep_mask(
        concepts["concept"],
        concepts["kind"],
        min_object_count=min_object_count,
        min_attribute_count=min_attribute_count,
        keep_coco=keep_coco,
    )
    concepts = concepts[keep].reset_index(drop=True)
    ids = sorted(set(concepts["image_id"]))
    probe = pd.DataFrame([(i, present[i], *sizes[i]) for i in ids], columns=probe_columns)
    return check_schema(probe, "probe"), check_schema(concepts, "concepts"), problems, []


def _trailing_number(name: str) -> int | None:
    digits = re.search(r"(\d+)$", str(name))
    return int(digits.group(1)) if digits else None


def index_val_concepts(
    root: str | Path,
    val: pd.DataFrame,
    *,
    min_object_count: int = 1,
    min_attribute_count: int = 1,
    keep_coco: bool = False,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Concepts on the saliency validation images, for the failure analysis.

    Visual Genome covers about half of COCO, and every VG image records its
    ``coco_id`` in ``image_data.json``; a SALICON image is a COCO image whose
    file name ends in that id (``COCO_val2014_000000000042``). Boxes are
    rescaled from the VG image's size to the validation image's. Returns the
    concept table (image_id of ``val``, concept, kind, x, y, w, h) and problems;
    val images without a scene graph are simply absent.
    """
    root = Path(root)
    columns = ["image_id", "concept", "kind", "x", "y", "w", "h"]
    image_data, bad = _read_json(root / "image_data.json")
    if bad:
        return pd.DataFrame(columns=columns), [bad]
    by_number = {}
    for image_id, height, width in val[["image_id", "height", "width"]].itertuples(index=False):
        number = _trailing_number(image_id)
        if number is not None:
            by_number[number] = (image_id, height, width)
    linked = {}
    for entry in image_data if isinstance(image_data, list) else []:
        coco = entry.get("coco_id") if isinstance(entry, dict) else None
        if (
            coco is not None
            and int(coco) in by_number
            and all(k in entry for k in ("image_id", "height", "width"))
        ):
            linked[int(entry["image_id"])] = (
                *by_number[int(coco)],
                entry["height"],
                entry["width"],
            )
    if not linked:
        return pd.DataFrame(columns=columns), []
    problems: list[Problem] = []
    _, graphs, _, fatal = _visual_genome_graphs(root, problems)
    rows = []
    for vg_id, objects in graphs:
        if vg_id not in linked:
            continue
        image_id, height, width, vg_height, vg_width = linked[vg_id]
        sy, sx = height / vg_height, width / vg_width
        for obj in objects:
            if not isinstance(obj, dict) or not all(
                obj.get(k) is not None for k in ("x", "y", "w", "h", "names")
            ):
                continue
            box = (obj["x"] * sx, obj["y"] * sy, obj["w"] * sx, obj["h"] * sy)
            rows += [(image_id, object_concept(n), "object", *box) for n in obj["names"]]
            rows += [
                (image_id, attribute_concept(a), "attribute", *box)
                for a in obj.get("attributes", []) or []
            ]
    concepts = pd.DataFrame([r for r in rows if r[1]], columns=columns)
    keep = keep_mask(
        concepts["concept"],
        concepts["kind"],
        min_object_count=min_object_count,
        min_attribute_count=min_attribute_count,
        keep_coco=keep_coco,
    )
    return check_schema(concepts[keep].reset_index(drop=True), "concepts"), fatal + problems


def read_salicon_split(root: str | Path, split: str) -> pd.DataFrame:
    """A SALICON split with every sample checked; raises `InputError` listing all problems."""
    table, problems, fatal = index_salicon_split(root, split)
    if fatal or problems:
        raise InputError(fatal + problems, f"SALICON split {split!r} under {root}")
    return check_schema(table, "split")


def read_visual_genome(root: str | Path, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe set and concepts (options of `index_visual_genome`); raises `InputError`."""
    probe, concepts, problems, fatal = index_visual_genome(root, **options)
    if fatal or problems:
        raise InputError(fatal + problems, f"Visual Genome under {root}")
    return probe, concepts
