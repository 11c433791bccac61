"""A synthetic world with a known answer: images, scene graphs and planted saliency.

Every image is drawn with OpenCV: two or three background bands (sky, field,
road, sand, wall; horizontal or vertical, in random order and at random cuts,
so no background lives only at the border) and a few objects (faces, words,
clocks, zebras, giraffes, buses, airplanes, jackets, helmets, balls) whose
centres are uniform over the image, cropped at its border, so that objects are
as often peripheral as backgrounds and the centre bias favours neither. Buses,
jackets, helmets and balls carry a colour attribute (red, blue, pink) drawn in
that colour. Only the concepts given a planted weight are drawn. A pixel's
value is the weight of the background under it, or of the object on top plus
its colour's weight. Fixation density is ``exp(gain * value)`` times a
Gaussian centre bias, fixations are sampled from it, and the saliency map is
the blurred fixation map, as in SALICON.

The world is written in the real layouts (`write_world`) and read back by the
readers in `saldissect.data.datasets`:

- ``salicon/images/{train,val}/<name>.jpg``, ``salicon/maps/{split}/<name>.png``,
  ``salicon/fixations/{split}/<name>.mat`` (SALICON 2017: ``image``,
  ``resolution`` and a ``gaze`` struct array with 1-based ``fixations``);
- ``visual_genome/images/<image_id>.jpg``, ``image_data.json``,
  ``objects.json``, ``attributes.json`` for the probe images;
- ``visual_genome_val/`` the same JSON files for the validation images, each
  linked to its image by ``coco_id`` (the number ending its name), as Visual
  Genome links its COCO images;
- ``planted.parquet`` (concept, category, kind, weight).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.io
from tqdm import tqdm

from saldissect.core.io import write_atomic, write_parquet
from saldissect.core.metrics import center_bias
from saldissect.data.imports import blurred_map, fixation_counts

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


@dataclass(frozen=True)
class Concept:
    name: str
    category: str
    kind: str  # "object", "background" or "attribute"
    aspect: float = 1.0  # width / height of an object's box


OBJECTS = (
    Concept("face", "social", "object", 0.8),
    Concept("word", "text", "object", 2.2),
    Concept("clock", "text", "object", 1.0),
    Concept("zebra", "animal", "object", 1.4),
    Concept("giraffe", "animal", "object", 0.7),
    Concept("bus", "vehicle", "object", 1.7),
    Concept("airplane", "vehicle", "object", 1.6),
    Concept("jacket", "clothing", "object", 1.0),
    Concept("helmet", "clothing", "object", 1.3),
    Concept("ball", "action", "object", 1.0),
)
BACKGROUNDS = (
    Concept("sky", "sky", "background"),
    Concept("field", "ground", "background"),
    Concept("road", "ground", "background"),
    Concept("sand", "ground", "background"),
    Concept("wall", "scene", "background"),
)
COLOURS = {"red": (40, 40, 220), "blue": (150, 40, 10), "pink": (190, 120, 255)}  # BGR
ATTRIBUTES = tuple(Concept(name, "color", "attribute") for name in COLOURS)
NEUTRAL = (120, 120, 120)  # coloured objects when no colour concept is planted
COLOURED = frozenset({"bus", "jacket", "helmet", "ball"})
CONCEPTS: dict[str, Concept] = {c.name: c for c in OBJECTS + BACKGROUNDS + ATTRIBUTES}


@dataclass
class Scene:
    """One drawn image with its annotations and planted value map."""

    image: np.ndarray  # H x W x 3 uint8 BGR
    value: np.ndarray  # H x W float: planted weight at each pixel
    objects: list[dict] = field(default_factory=list)  # name, box, attributes


# --------------------------------------------------------------------- drawing
def _ellipse(mask: np.ndarray, box: Box, scale: tuple[float, float] = (1.0, 1.0)) -> None:
    x, y, w, h = box
    centre = (x + w // 2, y + h // 2)
    axes = (max(1, int(w * scale[0] / 2)), max(1, int(h * scale[1] / 2)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)


def _fill(image: np.ndarray, mask: np.ndarray, colour, rng, noise: float = 8.0) -> None:
    shade = np.asarray(colour, np.float32) + rng.normal(0, noise, 3)
    image[mask > 0] = np.clip(shade, 0, 255).astype(np.uint8)


def _draw_face(image, mask, box, colour, rng):
    _ellipse(mask, box)
    _fill(image, mask, (130, 175, 225), rng)
    x, y, w, h = box
    r = max(1, w // 9)
    for ex in (x + w // 3, x + 2 * w // 3):
        cv2.circle(image, (ex, y + h * 2 // 5), r, (40, 30, 30), -1)
    cv2.ellipse(image, (x + w // 2, y + h * 2 // 3), (w // 5, h // 10), 0, 0, 180, (60, 40, 160), 2)


def _draw_word(image, mask, box, colour, rng):
    x, y, w, h = box
    cv2.rectangle(mask, (x, y), (x + w - 1, y + h - 1), 1, -1)
    _fill(image, mask, (170, 235, 250), rng, 4)
    letters = "".join(rng.choice(list("ABEHKMNRSTWXZ"), size=4))
    (tw, th), _ = cv2.getTextSize(letters, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)
    scale = min(0.6 * h / th, 0.9 * w / tw)
    org = (x + max(1, w // 20), y + int(h * 0.78))
    cv2.putText(image, letters, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 2)


def _draw_clock(image, mask, box, colour, rng):
    _ellipse(mask, box)
    _fill(image, mask, (245, 245, 250), rng, 3)
    x, y, w, h = box
    c, r = (x + w // 2, y + h // 2), min(w, h) // 2
    cv2.circle(image, c, r, (30, 30, 30), 2)
    for angle in rng.uniform(0, 2 * np.pi, 2):
        tip = (int(c[0] + 0.7 * r * np.cos(angle)), int(c[1] + 0.7 * r * np.sin(angle)))
        cv2.line(image, c, tip, (20, 20, 20), 2)


def _striped(image, mask, box, base, stripe, rng, spots: bool = False):
    _fill(image, mask, base, rng, 4)
    x, y, w, h = box
    marks = np.zeros_like(mask)
    if spots:
        for _ in range(8):
            cx, cy = rng.integers(x, x + w), rng.integers(y, y + h)
            cv2.circle(marks, (int(cx), int(cy)), max(1, w // 10), 1, -1)
    else:
        for sx in range(x, x + w, max(3, w // 7)):
            cv2.line(marks, (sx, y), (sx + w // 8, y + h), 1, max(1, w // 18))
    image[(marks > 0) & (mask > 0)] = stripe


def _draw_zebra(image, mask, box, colour, rng):
    x, y, w, h = box
    _ellipse(mask, (x, y + h // 6, w * 4 // 5, h * 2 // 3))
    _ellipse(mask, (x + w * 3 // 5, y, w * 2 // 5, h // 2))
    for lx in (x + w // 8, x + w // 2):
        cv2.rectangle(mask, (lx, y + h // 2), (lx + max(3, w // 8), y + h - 1), 1, -1)
    _striped(image, mask, box, (240, 240, 240), (15, 15, 15), rng)


def _draw_giraffe(image, mask, box, colour, rng):
    x, y, w, h = box
    _ellipse(mask, (x, y + h * 2 // 5, w, h * 2 // 5))
    cv2.rectangle(mask, (x + w // 2, y + h // 8), (x + w * 7 // 8, y + h * 3 // 5), 1, -1)
    _ellipse(mask, (x + w // 3, y, w * 2 // 3, h // 4))
    for lx in (x + w // 6, x + w * 2 // 3):
        cv2.rectangle(mask, (lx, y + h * 3 // 4), (lx + max(3, w // 7), y + h - 1), 1, -1)
    _striped(image, mask, box, (60, 170, 230), (20, 70, 120), rng, spots=True)


def _draw_bus(image, mask, box, colour, rng):
    x, y, w, h = box
    cv2.rectangle(mask, (x, y), (x + w - 1, y + h * 4 // 5), 1, -1)
    _fill(image, mask, colour, rng)
    for wx in range(x + w // 10, x + w - w // 8, max(4, w // 5)):
        cv2.rectangle(image, (wx, y + h // 8), (wx + w // 9, y + h // 3), (235, 215, 170), -1)
    for cx in (x + w // 5, x + 4 * w // 5):
        cv2.circle(mask, (cx, y + h * 4 // 5), max(2, h // 7), 1, -1)
        cv2.circle(image, (cx, y + h * 4 // 5), max(2, h // 7), (25, 25, 25), -1)


def _draw_airplane(image, mask, box, colour, rng):
    x, y, w, h = box
    _ellipse(mask, (x, y + h // 3, w, h // 3))
    wing = np.array(
        [
            [x + w // 4, y + h // 2],
            [x + w // 2, y],
            [x + w * 3 // 4, y],
            [x + w * 3 // 5, y + h // 2],
            [x + w * 3 // 4, y + h - 1],
            [x + w // 2, y + h - 1],
        ],
        np.int32,
    )
    cv2.fillPoly(mask, [wing], 1)
    tail = np.array([[x, y + h // 2], [x, y + h // 8], [x + w // 5, y + h // 2]], np.int32)
    cv2.fillPoly(mask, [tail], 1)
    _fill(image, mask, (205, 200, 195), rng, 5)
    cv2.line(image, (x + w // 8, y + h // 2), (x + w - 2, y + h // 2), (90, 90, 90), 1)


def _draw_jacket(image, mask, box, colour, rng):
    x, y, w, h = box
    shape = np.array(
        [
            [x + w // 3, y],
            [x + 2 * w // 3, y],
            [x + w - 1, y + h // 3],
            [x + 5 * w // 6, y + h // 2],
            [x + 3 * w // 4, y + h // 3],
            [x + 3 * w // 4, y + h - 1],
            [x + w // 4, y + h - 1],
            [x + w // 4, y + h // 3],
            [x + w // 6, y + h // 2],
            [x, y + h // 3],
        ],
        np.int32,
    )
    cv2.fillPoly(mask, [shape], 1)
    _fill(image, mask, colour, rng)
    cv2.line(image, (x + w // 2, y + h // 8), (x + w // 2, y + h - 2), (30, 30, 30), 1)


def _draw_helmet(image, mask, box, colour, rng):
    x, y, w, h = box
    cv2.ellipse(mask, (x + w // 2, y + h - 1), (w // 2, h - 1), 0, 180, 360, 1, -1)
    _fill(image, mask, colour, rng)
    cv2.line(
        image, (x + w // 6, y + h * 3 // 4), (x + w * 5 // 6, y + h * 3 // 4), (250, 250, 250), 2
    )


def _draw_ball(image, mask, box, colour, rng):
    _ellipse(mask, box)
    _fill(image, mask, colour, rng)
    x, y, w, h = box
    cv2.ellipse(image, (x + w // 2, y + h // 2), (w // 2, h // 6), 30, 0, 360, (250, 250, 250), 2)


def _texture(image, region: Box, name: str, rng) -> None:
    """Fill a background band with its concept's texture."""
    x, y, w, h = region
    view = image[y : y + h, x : x + w]
    noise = rng.normal(0, 6, view.shape)
    if name == "sky":
        ramp = np.linspace(0, 1, h)[:, None, None]
        view[:] = np.clip((235, 200, 140) + ramp * np.array([10, 30, 60]) + noise, 0, 255)
        for _ in range(rng.integers(1, 4)):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.ellipse(view, c, (max(2, w // 8), max(2, h // 12)), 0, 0, 360, (250, 250, 250), -1)
    elif name == "field":
        view[:] = np.clip((50, 150, 60) + noise * 2, 0, 255)
        for _ in range(w * h // 60):
            px, py = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(view, (px, py), (px + 1, py - 3), (30, 100, 30), 1)
    elif name == "road":
        view[:] = np.clip((85, 85, 85) + noise, 0, 255)
        if w >= h:
            for sx in range(0, w, 14):
                cv2.line(view, (sx, h // 2), (sx + 6, h // 2), (200, 230, 240), 2)
        else:
            for sy in range(0, h, 14):
                cv2.line(view, (w // 2, sy), (w // 2, sy + 6), (200, 230, 240), 2)
    elif name == "sand":
        view[:] = np.clip((150, 200, 225) + noise * 3, 0, 255)
    elif name == "wall":
        view[:] = np.clip((70, 95, 150) + noise, 0, 255)
        for row, by in enumerate(range(0, h, 6)):
            cv2.line(view, (0, by), (w, by), (205, 205, 200), 1)
            for bx in range((row % 2) * 6, w, 12):
                cv2.line(view, (bx, by), (bx, by + 6), (205, 205, 200), 1)
    else:
        raise ValueError(f"no texture for background {name!r}")


DRAWERS: dict[str, Callable] = {
    "face": _draw_face,
    "word": _draw_word,
    "clock": _draw_clock,
    "zebra": _draw_zebra,
    "giraffe": _draw_giraffe,
    "bus": _draw_bus,
    "airplane": _draw_airplane,
    "jacket": _draw_jacket,
    "helmet": _draw_helmet,
    "ball": _draw_ball,
}


# ----------------------------------------------------------------------- scenes
def _bands(height: int, width: int, rng, most: int = 3) -> list[Box]:
    """Two or three (at most ``most``) horizontal or vertical bands at random cuts."""
    n = min(int(rng.integers(2, 4)), most)
    length = height if rng.random() < 0.5 else width
    horizontal = length == height
    cuts = np.sort(rng.uniform(0.2, 0.8, n - 1)) * length
    edges = [0, *np.round(cuts).astype(int).tolist(), length]
    edges = sorted(set(edges))
    if horizontal:
        return [(0, a, width, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    return [(a, 0, b - a, height) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _clip(box: Box, width: int, height: int) -> Box:
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(width, box[0] + box[2]), min(height, box[1] + box[3])
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def _box_iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def draw_scene(rng: np.random.Generator, weights: dict[str, float], cfg: dict) -> Scene:
    """Draw one image with its objects, attributes and planted value map."""
    height, width = cfg["height"], cfg["width"]
    image = np.zeros((height, width, 3), np.uint8)
    value = np.zeros((height, width), np.float32)
    objects: list[dict] = []
    backgrounds = rng.permutation([c.name for c in BACKGROUNDS if c.name in weights])
    objects_drawn = [c for c in OBJECTS if c.name in weights]
    colours = [name for name in COLOURS if name in weights]
    for name, band in zip(backgrounds, _bands(height, width, rng, len(backgrounds)), strict=False):
        _texture(image, band, str(name), rng)
        x, y, w, h = band
        value[y : y + h, x : x + w] = weights.get(str(name), 0.0)
        objects.append({"name": str(name), "box": band, "attributes": []})
    low, high = cfg["objects_per_image"]
    smin, smax = cfg["object_size"]
    placed: list[Box] = []
    names: list[str] = []  # concept of each placed box
    owner = np.full((height, width), -1, np.int32)  # index of the object on top of each pixel
    for _ in range(int(rng.integers(low, high + 1))):
        if not objects_drawn:
            break
        concept = objects_drawn[int(rng.integers(len(objects_drawn)))]
        for _attempt in range(30):
            side = rng.uniform(smin, smax) * min(height, width)
            w = int(min(width - 2, side * np.sqrt(concept.aspect)))
            h = int(min(height - 2, side / np.sqrt(concept.aspect)))
            # Centres uniform over the whole image, objects cropped at its border:
            # objects are as often peripheral as backgrounds (no centre-bias confound).
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            box = (int(cx - w / 2), int(cy - h / 2), w, h)
            if all(_box_iou(box, other) < cfg["max_overlap"] for other in placed):
                break
        else:
            continue
        placed.append(box)
        names.append(concept.name)
        attributes, colour = [], NEUTRAL
        if concept.name in COLOURED and colours:
            attributes = [str(rng.choice(colours))]
            colour = COLOURS[attributes[0]]
        mask = np.zeros((height, width), np.uint8)
        DRAWERS[concept.name](image, mask, box, colour, rng)
        value[mask > 0] = weights.get(concept.name, 0.0) + sum(
            weights.get(a, 0.0) for a in attributes
        )
        owner[mask > 0] = len(placed) - 1
        visible = _clip(box, width, height)
        if visible[2] > 0 and visible[3] > 0:
            objects.append({"name": concept.name, "box": visible, "attributes": attributes})
    plant_interaction(value, owner, placed, names, cfg.get("interaction"))
    return Scene(image=image, value=value, objects=objects)


def plant_interaction(
    value: np.ndarray, owner: np.ndarray, boxes: list[Box], names: list[str], cfg: dict | None
) -> None:
    """The planted interaction: every visible pixel of a ``source`` object gains
    ``weight`` when a ``target`` object's box centre lies within ``radius`` x the
    image diagonal of the source's box centre. No random draws: a world without
    an interaction is the same world, pixel for pixel."""
    if not cfg or not cfg.get("source") or not cfg.get("weight"):
        return
    reach = cfg["radius"] * float(np.hypot(*value.shape))
    centres = np.array([(x + w / 2, y + h / 2) for x, y, w, h in boxes]).reshape(-1, 2)
    is_target = np.array([n == cfg["target"] for n in names], bool)
    for index, name in enumerate(names):
        others = is_target & (np.arange(len(names)) != index)  # never the object itself
        if name != cfg["source"] or not others.any():
            continue
        if (np.hypot(*(centres[others] - centres[index]).T) <= reach).any():
            value[owner == index] += cfg["weight"]


def fixation_density(value: np.ndarray, cfg: dict) -> np.ndarray:
    """``exp(gain * value)`` times the mixed centre bias, normalised to sum 1."""
    bias = center_bias(*value.shape, cfg["center_bias_sigma"])
    strength = cfg["center_bias_strength"]
    density = np.exp(cfg["gain"] * value) * ((1 - strength) + strength * bias)
    return density / density.sum()


def sample_fixations(density: np.ndarray, n: int, rng) -> np.ndarray:
    """``n`` fixations (row, col), 0-based, drawn from the density."""
    flat = rng.choice(density.size, size=n, p=density.ravel())
    return np.stack(np.unravel_index(flat, density.shape), axis=1)


def saliency_map(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Blurred fixation map scaled to 0..255 (uint8), SALICON style: the blur of an
    import (`imports.blurred_map`) with ``sigma`` times the width in pixels."""
    counts = fixation_counts(points[:, 0], points[:, 1], shape)
    return blurred_map(counts, sigma * shape[1])


# ---------------------------------------------------------------------- writing
def _gaze_struct(points: np.ndarray, n_observers: int, rng) -> np.ndarray:
    """SALICON's ``gaze``: one struct per observer, 1-based (x, y) fixations."""
    gaze = np.zeros(
        (n_observers, 1), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")]
    )
    for i, chunk in enumerate(np.array_split(points, n_observers)):
        xy = chunk[:, ::-1].astype(np.float64) + 1.0
        gaze[i, 0]["fixations"] = xy
        gaze[i, 0]["location"] = xy + rng.normal(0, 0.5, xy.shape)
        gaze[i, 0]["timestamp"] = np.sort(rng.integers(0, 5000, len(xy))).astype(np.float64)[
            :, None
        ]
    return gaze


def validate_interaction(interaction: dict | None, weights: dict[str, float]) -> None:
    """A planted interaction names two planted objects (an empty source plants none)."""
    if not interaction or not interaction.get("source"):
        return
    drawn = sorted(c.name for c in OBJECTS if c.name in weights)
    for key in ("source", "target"):
        if interaction.get(key) not in drawn:
            raise ValueError(
                f"synthetic.interaction.{key}: {interaction.get(key)!r} is not a planted "
                f"object; choose one of {drawn}"
            )


def validate_weights(weights: dict[str, float]) -> None:
    """The planted concepts are the keys of ``weights``: known names, at least one background."""
    unknown = sorted(set(weights) - set(CONCEPTS))
    if unknown:
        raise ValueError(
            f"synthetic.weights: unknown concept(s) {unknown}; "
            f"the world can draw {sorted(CONCEPTS)}"
        )
    if not any(c.name in weights for c in BACKGROUNDS):
        raise ValueError(
            "synthetic.weights: plant at least one background "
            f"({', '.join(c.name for c in BACKGROUNDS)})"
        )


def planted_table(weights: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "concept": c.name,
                "category": c.category,
                "kind": c.kind,
                "weight": float(weights.get(c.name, 0.0)),
            }
            for c in CONCEPTS.values()
            if c.name in weights
        ]
    )


def scene(cfg: dict, split: str, index: int) -> Scene:
    """Image ``index`` of ``split`` (train, val or probe) of the world ``cfg``, drawn
    again: `write_world` draws each image from a stream of its own, so it is the
    same scene, pixel for pixel (probe image ``index`` has image_id ``index + 1``)."""
    weights = {k: float(v) for k, v in cfg["weights"].items()}
    return draw_scene(_rng(int(cfg["seed"]), split, index), weights, cfg)


def _rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """Independent, reproducible stream per (split, image)."""
    code = sum((i + 1) * ord(ch) for i, ch in enumerate(stream))
    return np.random.default_rng([seed, code, index])


def _write_scene_graphs(folder: Path, scenes: list, cfg: dict) -> None:
    """Visual Genome's image_data.json, objects.json and attributes.json for
    ``scenes`` (image_id, coco_id, objects)."""
    folder.mkdir(parents=True, exist_ok=True)
    image_data, objects_json, attributes_json = [], [], []
    object_id = 1
    for image_id, coco_id, objects in scenes:
        image_data.append(
            {
                "image_id": image_id,
                "width": cfg["width"],
                "height": cfg["height"],
                "url": "",
                "coco_id": coco_id,
                "flickr_id": None,
            }
        )
        objs, attrs = [], []
        for obj in objects:
            x, y, w, h = obj["box"]
            record = {"object_id": object_id, "x": x, "y": y, "w": w, "h": h}
            record["names"] = [obj["name"]]
            objs.append(record)
            attrs.append(
                {**record, **({"attributes": obj["attributes"]} if obj["attributes"] else {})}
            )
            object_id += 1
        objects_json.append({"image_id": image_id, "objects": objs})
        attributes_json.append({"image_id": image_id, "attributes": attrs})
    for name, payload in (
        ("image_data", image_data),
        ("objects", objects_json),
        ("attributes", attributes_json),
    ):
        text = json.dumps(payload)
        write_atomic(folder / f"{name}.json", lambda tmp, text=text: tmp.write_text(text))


def write_world(root: str | Path, cfg: dict, progress: bool = True) -> None:
    """Generate the world described by the ``synthetic`` config section under ``root``."""
    root = Path(root)
    weights = {k: float(v) for k, v in cfg["weights"].items()}
    validate_weights(weights)
    validate_interaction(cfg.get("interaction"), weights)
    seed = int(cfg["seed"])
    salicon, vg = root / "salicon", root / "visual_genome"
    val_scenes = []
    for split, count in (("train", cfg["n_train"]), ("val", cfg["n_val"])):
        for sub in ("images", "maps", "fixations"):
            (salicon / sub / split).mkdir(parents=True, exist_ok=True)
        for i in tqdm(range(count), desc=f"synthetic {split}", disable=not progress):
            rng = _rng(seed, split, i)
            drawn = draw_scene(rng, weights, cfg)  # the fixations go on drawing from rng
            density = fixation_density(drawn.value, cfg)
            n_fix = cfg["observers"] * cfg["fixations_per_observer"]
            points = sample_fixations(density, n_fix, rng)
            name = f"synthetic_{split}_{i:06d}"
            if split == "val":
                val_scenes.append((i + 1, i, drawn.objects))
            cv2.imwrite(
                str(salicon / "images" / split / f"{name}.jpg"),
                drawn.image,
                [cv2.IMWRITE_JPEG_QUALITY, 95],
            )
            cv2.imwrite(
                str(salicon / "maps" / split / f"{name}.png"),
                saliency_map(points, density.shape, cfg["blur_sigma"]),
            )
            scipy.io.savemat(
                salicon / "fixations" / split / f"{name}.mat",
                {
                    "image": name,
                    "resolution": np.array([[cfg["height"], cfg["width"]]], np.uint16),
                    "gaze": _gaze_struct(points, cfg["observers"], rng),
                },
            )
    (vg / "images").mkdir(parents=True, exist_ok=True)
    probe_scenes = []
    for i in tqdm(range(cfg["n_probe"]), desc="synthetic probe", disable=not progress):
        drawn = scene(cfg, "probe", i)
        cv2.imwrite(
            str(vg / "images" / f"{i + 1}.jpg"), drawn.image, [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        probe_scenes.append((i + 1, None, drawn.objects))
    _write_scene_graphs(vg, probe_scenes, cfg)
    # The validation images' scene graphs, linked by coco_id as Visual Genome
    # links its COCO images (the failure analysis reads them).
    _write_scene_graphs(root / "visual_genome_val", val_scenes, cfg)
    write_parquet(planted_table(weights), root / "planted.parquet", "planted")
