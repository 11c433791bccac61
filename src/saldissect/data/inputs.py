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

At Visual Genome scale (108,077 images; attributes.json is ~460 MB) the JSON
is streamed one top-level entry at a time (`json_entries`) into columnar
arrays, so memory is bounded by the output tables, not by the parsed JSON,
and the per-image checks run on ``threads`` threads (`parallel_map`).
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from saldissect.core.errors import UserError
from saldissect.core.io import IMAGE_SUFFIXES, check_schema
from saldissect.data.datasets import load_fixations
from saldissect.data.vocabulary import COCO_CATEGORIES, attribute_concept, object_concept

Problem = tuple[str, str]


class InputError(UserError, ValueError):
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


# ------------------------------------------------------------ streaming JSON
JSON_CHUNK = 1 << 20  # characters read at a time by `json_entries`
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_TOKEN_TAIL = 32  # a decode error this close to the buffer's end may be a token cut in two
# what an error at the end of a truncated file sees: nothing, or the start of a token
_CUT_TOKEN = re.compile(r"(?:\.|[eE][-+]?|-|\\?u[0-9a-fA-F]{0,4}|tr?u?|fa?l?s?|nu?l?)?\s*")


class JsonFileError(ValueError):
    """A file that cannot be read as JSON of the expected shape; ``problem`` is (file, reason)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(f"{problem[0]}: {problem[1]}")


class _JsonReader:
    """A text file read through a sliding buffer, one JSON value at a time.

    ``buf[pos:]`` is unread; ``consumed`` characters (``lines`` newlines, the
    last line starting at ``line_start``) came before ``buf[0]``, so errors
    name the position in the whole file as `json` does.
    """

    def __init__(self, handle, path: Path, chunk: int):
        self.handle, self.path, self.chunk = handle, str(path), chunk
        self.buf, self.pos, self.eof = "", 0, False
        self.consumed = self.lines = self.line_start = 0

    def more(self, size: int) -> bool:
        """Append up to ``size`` characters, dropping what was read; False at end of file."""
        if self.eof:
            return False
        try:
            data = self.handle.read(size)
        except UnicodeDecodeError as error:
            where = self.consumed + len(self.buf)
            raise JsonFileError(
                (self.path, f"not valid JSON (not UTF-8 text after character {where}: {error})")
            ) from None
        if not data:
            self.eof = True
            return False
        if self.pos:
            newlines = self.buf.count("\n", 0, self.pos)
            if newlines:
                self.lines += newlines
                self.line_start = self.consumed + self.buf.rfind("\n", 0, self.pos) + 1
            self.consumed += self.pos
            self.buf, self.pos = self.buf[self.pos :] + data, 0
        else:
            self.buf += data
        return True

    def fail(self, message: str, pos: int | None = None) -> None:
        pos = self.pos if pos is None else pos
        line = self.lines + self.buf.count("\n", 0, pos) + 1
        newline = self.buf.rfind("\n", 0, pos)
        start = self.consumed + newline + 1 if newline >= 0 else self.line_start
        char = self.consumed + pos
        at_end = self.eof and (
            message.startswith("Unterminated string") or _CUT_TOKEN.fullmatch(self.buf, pos)
        )
        where = f"line {line} column {char - start + 1} (char {char})"
        end = ", at the end of the file: truncated?" if at_end else ""
        raise JsonFileError((self.path, f"not valid JSON ({message}: {where}{end})"))

    def peek(self) -> str:
        """The next character that is not whitespace ('' at end of file), left unread."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more(self.chunk):
                return ""

    def expect(self, chars: str, message: str) -> str:
        char = self.peek()
        if not char or char not in chars:
            self.fail(message)
        self.pos += 1
        return char

    def value(self) -> object:
        """Decode the value at the cursor, reading more while it is cut by the buffer's end."""
        size = self.chunk
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as error:
                cut = error.pos >= len(self.buf) - _TOKEN_TAIL or error.msg.startswith(
                    "Unterminated string"
                )
                if self.eof or not cut:
                    self.fail(error.msg, error.pos)
            else:
                # a number near the buffer's end may go on in the next chunk ("-2" of "-2.5")
                if end < len(self.buf) - _TOKEN_TAIL or self.eof:
                    self.pos = end
                    return value
            self.more(size)
            size *= 2  # a long value is re-decoded O(log) times, not once per chunk


def json_entries(
    path: str | Path, container: type = list, expected: str = "", *, chunk: int | None = None
) -> Iterator[tuple[int | str, object]]:
    """The top-level entries of a JSON file, one at a time: (index, element) of a
    list or (key, value) of an object, without holding the file in memory.

    Memory is one entry plus a buffer of ``chunk`` characters (`JSON_CHUNK`);
    an entry longer than the buffer is read whole, however long. A key that
    repeats is yielded each time (`json.load` keeps the last). Raises
    `JsonFileError` with one line naming the file: a missing file, text
    that is not JSON (with `json`'s message and position; a truncated file
    fails at its end), or, once the whole file is known to be valid JSON, a
    top level that is not ``container`` (reason ``expected``).
    """
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise JsonFileError((str(path), "Visual Genome file not found")) from None
    except OSError as error:
        raise JsonFileError((str(path), f"cannot be read ({error.strerror})")) from None
    with handle:
        reader = _JsonReader(handle, path, chunk or JSON_CHUNK)
        first = reader.peek()
        wanted = first == ("[" if container is list else "{")
        if first in ("[", "{"):
            reader.pos += 1
            close = "]" if first == "[" else "}"
            index = 0
            if reader.peek() == close:
                reader.pos += 1
            else:
                while True:
                    if first == "{":
                        if reader.peek() != '"':
                            reader.fail("Expecting property name enclosed in double quotes")
                        key = reader.value()
                        reader.expect(":", "Expecting ':' delimiter")
                    else:
                        key = index
                    if not reader.peek():
                        reader.fail("Expecting value")
                    value = reader.value()
                    if wanted:
                        yield key, value
                    index += 1
                    if reader.expect("," + close, "Expecting ',' delimiter") == close:
                        break
        elif first:
            reader.value()
        else:
            reader.fail("Expecting value")
        if reader.peek():
            reader.fail("Extra data")
    if not wanted:
        raise JsonFileError((str(path), expected or f"expected a JSON {container.__name__}"))


def parallel_map(function: Callable, items: Iterable, threads: int = 1, *, block: int = 1024):
    """``[function(item) for item in items]`` on ``threads`` worker threads, in the same order.

    Image decoding (PIL, OpenCV) releases the GIL, so the checks of one image
    per thread overlap. Items are submitted ``block`` at a time to bound the
    number of pending futures.
    """
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    results: list = []
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        for start in range(0, len(items), block):
            results += pool.map(function, items[start : start + block])
    return results


def _check_salicon_sample(root: Path, split: str, image_path: Path):
    """Problems of one SALICON sample, and its row when it has none."""
    name = image_path.stem
    size, reason = image_size(image_path)
    map_path = _find(root / "maps" / split, name, (".png", ".jpg", ".jpeg"))
    fixation_path = _find(root / "fixations" / split, name, (".mat", ".png"))
    found = []
    if reason:
        found.append((str(image_path), reason))
    if map_path is None:
        found.append((str(root / "maps" / split / f"{name}.png"), f"map missing for image {name}"))
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
        return found, None
    return [], (name, str(image_path), str(map_path), str(fixation_path), *size)


def index_salicon_split(
    root: str | Path, split: str, *, threads: int = 1
) -> tuple[pd.DataFrame, list[Problem], list[Problem]]:
    """Good samples of one SALICON split, per-sample problems, dataset problems.

    Each sample (image decoded, map and fixations checked against it) is
    checked on one of ``threads`` threads; results keep the file order."""
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
    checked = parallel_map(lambda path: _check_salicon_sample(root, split, path), images, threads)
    for found, row in checked:
        problems += found
        if row:
            rows.append(row)
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


# ------------------------------------------------------------ scene graphs
class _Boxes:
    """Concept rows in columnar form, as they stream in.

    One box per object (image code, x, y, w, h, which of them were JSON
    floats); one row per object name or attribute (its object, its concept's
    code, its kind). Names are made concepts once per distinct spelling.
    About 37 bytes per object and 9 per row, whatever the JSON held.
    """

    KINDS = ("object", "attribute")

    def __init__(self):
        self.ids: list = []  # image id of each image code
        self._image_codes: dict = {}
        self.obj_image, self.box, self.floats = array("i"), array("d"), array("B")
        self.row_obj, self.row_concept, self.row_kind = array("i"), array("i"), array("B")
        self.concepts: list[str] = []
        self._concept_codes: dict[str, int] = {}
        self._names: tuple[dict, dict] = ({}, {})

    def image(self, image_id) -> int:
        code = self._image_codes.get(image_id)
        if code is None:
            code = self._image_codes[image_id] = len(self.ids)
            self.ids.append(image_id)
        return code

    def _code(self, kind: int, name) -> int:
        key = name if isinstance(name, str) else str(name)
        code = self._names[kind].get(key)
        if code is None:
            concept = (object_concept if kind == 0 else attribute_concept)(key)
            code = self._concept_codes.get(concept, -1) if concept else -1
            if concept and code < 0:
                code = self._concept_codes[concept] = len(self.concepts)
                self.concepts.append(concept)
            self._names[kind][key] = code
        return code

    def add(self, image: int, box: tuple, floats: int, names, attributes) -> None:
        """One object's rows: its names (objects), then its attributes, if they make concepts."""
        codes = [(c, 0) for n in _as_list(names) if (c := self._code(0, n)) >= 0]
        codes += [(c, 1) for a in _as_list(attributes) if (c := self._code(1, a)) >= 0]
        if not codes:
            return
        obj = len(self.obj_image)
        self.obj_image.append(image)
        self.box.extend(box)
        self.floats.append(floats)
        for code, kind in codes:
            self.row_obj.append(obj)
            self.row_concept.append(code)
            self.row_kind.append(kind)

    def row_images(self) -> np.ndarray:
        """The image code of every row."""
        return np.frombuffer(self.obj_image, np.int32)[np.frombuffer(self.row_obj, np.int32)]

    def keep(self, rows: np.ndarray, **cutoffs) -> np.ndarray:
        """`keep_mask` of the selected ``rows``, from counts per (concept, kind) code."""
        pairs = (
            np.frombuffer(self.row_concept, np.int32)[rows] * 2
            + np.frombuffer(self.row_kind, np.uint8)[rows]
        )
        keep_pair = _keep_pairs(
            self.concepts, np.bincount(pairs, minlength=2 * len(self.concepts)), **cutoffs
        )
        return keep_pair[pairs]

    def frame(self, rows: np.ndarray, columns: list[str], typed_by=None) -> pd.DataFrame:
        """The selected rows as a concepts table; a box column is integer, as `pandas`
        makes JSON numbers, unless a float is among the rows ``typed_by`` (``rows``).

        Built one column at a time, so that the only transient beyond the table
        is one gathered column."""
        row_obj = np.frombuffer(self.row_obj, np.int32)
        typed = row_obj[rows if typed_by is None else typed_by]
        floats = int(np.bitwise_or.reduce(np.frombuffer(self.floats, np.uint8)[typed], initial=0))
        del typed
        objs = row_obj[rows]
        images = np.frombuffer(self.obj_image, np.int32)[objs]
        if all(type(i) is int for i in self.ids):
            image_ids = np.array(self.ids, np.int64)[images]
        else:
            image_ids = _strings(images, self.ids)
        del images
        # inserted one by one: a dict of columns would be stacked into one block (a copy)
        frame = pd.DataFrame({columns[0]: image_ids}, copy=False)
        del image_ids
        frame[columns[1]] = _strings(np.frombuffer(self.row_concept, np.int32)[rows], self.concepts)
        frame[columns[2]] = _strings(np.frombuffer(self.row_kind, np.uint8)[rows], self.KINDS)
        box = np.frombuffer(self.box, np.float64).reshape(-1, 4)
        for j, name in enumerate(columns[3:]):
            column = box[objs, j]
            frame[name] = column if floats >> j & 1 else column.astype(np.int64)
        return frame


def _strings(codes: np.ndarray, values) -> object:
    """``values[codes]`` as the string column `pandas` makes of Python strings: its
    arrow-backed ``str`` (pandas 3) decoded straight from the codes, else objects."""
    dtype = pd.Series(["x"]).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        dictionary = pa.array(list(values), pa.string())
        return dtype.__from_arrow__(
            pa.DictionaryArray.from_arrays(pa.array(codes), dictionary).dictionary_decode()
        )
    return np.array(list(values), dtype=object)[codes]


def _as_list(names) -> list:
    """A names or attributes field as a list: a lone string is one name, null none."""
    if names is None:
        return []
    return [names] if isinstance(names, str) else names


def _keep_pairs(concepts: list[str], counts: np.ndarray, **cutoffs) -> np.ndarray:
    """Which (concept code * 2 + kind) pairs `keep_mask` keeps, given their counts."""
    keep_coco = cutoffs.get("keep_coco", False)
    coco = np.fromiter((keep_coco and c in COCO_CATEGORIES for c in concepts), bool, len(concepts))
    keep = np.zeros(2 * len(concepts), bool)
    keep[0::2] = coco | (counts[0::2] >= cutoffs["min_object_count"])
    keep[1::2] = counts[1::2] >= cutoffs["min_attribute_count"]
    return keep


_BOX_KEYS = ("x", "y", "w", "h", "names")
_NUMBER = (int, float)


def _read_image_data(path: Path, problems: list[Problem], *, coco: bool = False) -> dict:
    """image_id -> (height, width), or (height, width, coco_id), from image_data.json."""
    sizes = {}
    for i, entry in json_entries(path, list, "expected a list of per-image entries"):
        missing = [
            k
            for k in ("image_id", "width", "height")
            if not isinstance(entry, dict) or k not in entry
        ]
        if missing:
            problems.append((str(path), f"entry {i} lacks {', '.join(missing)}"))
            continue
        try:
            size = (int(entry["height"]), int(entry["width"]))
            image_id = int(entry["image_id"])
        except (TypeError, ValueError):
            problems.append((str(path), f"entry {i} has a non-integer image_id, width or height"))
            continue
        sizes[image_id] = (*size, entry.get("coco_id")) if coco else size
    return sizes


def _visual_genome_entries(path: Path, problems: list[Problem]) -> Iterator[tuple[int, list]]:
    """(image_id, objects) of attributes.json, one image at a time."""
    for i, entry in json_entries(path, list, "expected a list of per-image entries"):
        if not isinstance(entry, dict) or "image_id" not in entry or "attributes" not in entry:
            problems.append((str(path), f"entry {i} lacks image_id or attributes"))
            continue
        try:
            image_id = int(entry["image_id"])
        except (TypeError, ValueError):
            problems.append((str(path), f"entry {i} has a non-integer image_id"))
            continue
        yield image_id, entry["attributes"] or []


def _visual_genome_graphs(root: Path, problems: list[Problem]):
    """Visual Genome's native JSON: image sizes from image_data.json (read first, whole:
    about 100 bytes an image), boxes streamed from attributes.json."""
    data_file, attr_file = root / "image_data.json", root / "attributes.json"
    try:
        sizes = _read_image_data(data_file, problems)
    except JsonFileError as error:
        # the run stops; name a broken attributes.json in the same report
        fatal = [error.problem]
        try:
            for _ in json_entries(attr_file, list, "expected a list of per-image entries"):
                pass
        except JsonFileError as other:
            fatal.append(other.problem)
        return {}, iter(()), str(attr_file), fatal
    return sizes, _visual_genome_entries(attr_file, problems), str(attr_file), []


def _gqa_entries(files: list[Path], sizes: dict, problems: list[Problem], fatal: list[Problem]):
    """(image_id, objects) of each ``*sceneGraphs.json``, one image at a time; its size
    goes into ``sizes``, a file that is not JSON into ``fatal``."""
    for path in files:
        try:
            for image_id, entry in json_entries(
                path, dict, "expected an object of image_id -> scene graph"
            ):
                image_id = str(image_id)
                if not isinstance(entry, dict) or not all(
                    k in entry for k in ("width", "height", "objects")
                ):
                    problems.append((str(path), f"image {image_id} lacks width, height or objects"))
                    continue
                objects = entry["objects"] or {}
                try:
                    sizes[image_id] = (int(entry["height"]), int(entry["width"]))
                except (TypeError, ValueError):
                    problems.append((str(path), f"image {image_id} has a non-integer size"))
                    continue
                if not isinstance(objects, dict):
                    problems.append((str(path), f"image {image_id}: objects is not an object"))
                    continue
                yield (
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
        except JsonFileError as error:
            fatal.append(error.problem)


def _gqa_graphs(root: Path, problems: list[Problem]):
    """GQA-style ``*sceneGraphs.json``: {image_id: {width, height, objects: {id: {...}}}}."""
    files = sorted(root.glob("*sceneGraphs.json"))
    if not files:
        return (
            {},
            iter(()),
            str(root),
            [(str(root), "no *sceneGraphs.json file (GQA scene graphs)")],
        )
    sizes, fatal = {}, []
    graph_file = str(files[0]) if len(files) == 1 else str(root)
    # ``fatal`` fills while the entries stream; `index_visual_genome` reads it after
    return sizes, _gqa_entries(files, sizes, problems, fatal), graph_file, fatal


SCENE_GRAPH_READERS = {"visual_genome": _visual_genome_graphs, "gqa": _gqa_graphs}


def _probe_image_problem(item: tuple[object, str]) -> str | None:
    image_id, path = item[0], Path(item[1])
    if not path.is_file():
        return f"image {image_id} of the scene graph is missing"
    return image_size(path)[1]


def index_visual_genome(
    root: str | Path,
    *,
    scene_graphs: str = "visual_genome",
    images: str | Path | None = None,
    min_object_count: int = 1,
    min_attribute_count: int = 1,
    keep_coco: bool = False,
    threads: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame, list[Problem], list[Problem]]:
    """Probe images and concept boxes from Visual Genome or GQA-style scene graphs.

    ``scene_graphs`` is ``visual_genome`` (``image_data.json`` and
    ``attributes.json``) or ``gqa`` (``*sceneGraphs.json``); images are
    ``<images>/<image_id>.jpg`` (``images`` defaults to ``root/images``).
    Returns ``probe`` (image_id, image_path, height, width), ``concepts``
    (image_id, concept, kind, x, y, w, h; an attribute carries its object's
    box), per-sample problems and dataset problems. Object names become
    singular concepts (`saldissect.data.vocabulary`); objects are kept if COCO
    categories (``keep_coco``) or seen at least ``min_object_count`` times,
    attributes if seen at least ``min_attribute_count`` times.

    The scene graphs are streamed one image at a time (`json_entries`) into
    columnar arrays, so memory grows with the boxes kept, not with the JSON;
    the probe images are decoded on ``threads`` threads.
    """
    root = Path(root)
    probe_columns = ["image_id", "image_path", "height", "width"]
    concept_columns = ["image_id", "concept", "kind", "x", "y", "w", "h"]
    empty = (pd.DataFrame(columns=probe_columns), pd.DataFrame(columns=concept_columns))
    if scene_graphs not in SCENE_GRAPH_READERS:
        raise ValueError(f"unknown scene-graph format {scene_graphs!r}")
    entry_problems: list[Problem] = []
    problems: list[Problem] = []
    sizes, graphs, graph_file, fatal = SCENE_GRAPH_READERS[scene_graphs](root, entry_problems)
    boxes, bad = _Boxes(), set()
    try:
        for image_id, objects in graphs:
            if image_id not in sizes:
                problems.append(
                    (graph_file, f"image {image_id} has no size (not in image_data.json)")
                )
                bad.add(image_id)
                continue
            height, width = sizes[image_id]
            code = boxes.image(image_id)
            for obj in objects if isinstance(objects, list) else [objects]:
                if not isinstance(obj, dict) or any(obj.get(k) is None for k in _BOX_KEYS):
                    problems.append(
                        (graph_file, f"image {image_id}: object lacks x, y, w, h or names")
                    )
                    bad.add(image_id)
                    continue
                box = x, y, w, h = obj["x"], obj["y"], obj["w"], obj["h"]
                if not all(type(v) in _NUMBER for v in box):
                    reason = f"box ({x}, {y}, {w}, {h}) is not numbers"
                elif w <= 0 or h <= 0:
                    reason = f"box of negative or zero size ({x}, {y}, {w}, {h})"
                elif x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
                    reason = f"box ({x}, {y}, {w}, {h}) outside the {width}x{height} image"
                else:
                    floats = sum(1 << j for j, v in enumerate(box) if type(v) is float)
                    boxes.add(code, box, floats, obj["names"], obj.get("attributes"))
                    continue
                problems.append(
                    (graph_file, f"image {image_id} object {obj.get('object_id')}: {reason}")
                )
                bad.add(image_id)
    except JsonFileError as error:
        fatal.append(error.problem)
    if fatal:
        return *empty, [], fatal
    problems = entry_problems + problems
    # images with at least one concept row and no bad box, checked in image_id order
    row_images = boxes.row_images()
    candidate = np.zeros(len(boxes.ids), bool)
    candidate[row_images] = True
    for image_id in bad:
        if image_id in boxes._image_codes:
            candidate[boxes._image_codes[image_id]] = False
    image_dir = Path(images) if images else root / "images"
    order = sorted((boxes.ids[c], c) for c in np.flatnonzero(candidate))
    reasons = parallel_map(
        _probe_image_problem, [(i, str(image_dir / f"{i}.jpg")) for i, _ in order], threads
    )
    present = np.zeros(len(boxes.ids), bool)
    paths = {}
    for (image_id, code), reason in zip(order, reasons, strict=True):
        path = image_dir / f"{image_id}.jpg"
        if reason:
            problems.append((str(path), reason))
        else:
            present[code] = True
            paths[image_id] = str(path)
    rows = np.flatnonzero(present[row_images])
    if not len(rows):
        concepts = empty[1]
    else:
        keep = boxes.keep(
            rows,
            min_object_count=min_object_count,
            min_attribute_count=min_attribute_count,
            keep_coco=keep_coco,
        )
        if keep.any():  # typed by all present rows, as pandas typed them before the cut
            concepts = boxes.frame(rows[keep], concept_columns, typed_by=rows)
        else:
            concepts = boxes.frame(rows, concept_columns)[keep].reset_index(drop=True)
    ids = sorted(set(concepts["image_id"]))
    probe = pd.DataFrame([(i, paths[i], *sizes[i]) for i in ids], columns=probe_columns)
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
    val images without a scene graph are simply absent. attributes.json is
    streamed and only the linked images' boxes are kept.
    """
    root = Path(root)
    columns = ["image_id", "concept", "kind", "x", "y", "w", "h"]
    empty = pd.DataFrame(columns=columns)
    problems: list[Problem] = []
    try:
        info = _read_image_data(root / "image_data.json", problems, coco=True)
    except JsonFileError as error:
        return empty, [error.problem]
    by_number = {}
    for image_id, height, width in val[["image_id", "height", "width"]].itertuples(index=False):
        number = _trailing_number(image_id)
        if number is not None:
            by_number[number] = (image_id, height, width)
    linked = {}
    for vg_id, (vg_height, vg_width, coco) in info.items():
        try:
            number = None if coco is None else int(coco)
        except (TypeError, ValueError):
            continue
        if number in by_number:
            linked[vg_id] = (*by_number[number], vg_height, vg_width)
    del info
    if not linked:
        return empty, []
    boxes = _Boxes()
    try:
        for vg_id, objects in _visual_genome_entries(root / "attributes.json", problems):
            if vg_id not in linked:
                continue
            image_id, height, width, vg_height, vg_width = linked[vg_id]
            sy, sx = height / vg_height, width / vg_width
            code = boxes.image(image_id)
            for obj in objects if isinstance(objects, list) else [objects]:
                if not isinstance(obj, dict) or any(obj.get(k) is None for k in _BOX_KEYS):
                    continue
                box = (obj["x"], obj["y"], obj["w"], obj["h"])
                if not all(type(v) in _NUMBER for v in box):
                    continue
                box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
                boxes.add(code, box, 0b1111, obj["names"], obj.get("attributes"))
    except JsonFileError as error:
        return empty, [error.problem]
    rows = np.arange(len(boxes.row_obj))
    if not len(rows):
        return check_schema(empty, "concepts"), problems
    keep = boxes.keep(
        rows,
        min_object_count=min_object_count,
        min_attribute_count=min_attribute_count,
        keep_coco=keep_coco,
    )
    if keep.any():
        concepts = boxes.frame(rows[keep], columns, typed_by=rows)
    else:
        concepts = boxes.frame(rows, columns)[keep].reset_index(drop=True)
    return check_schema(concepts, "concepts"), problems


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
