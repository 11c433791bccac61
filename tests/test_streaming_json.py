"""Visual Genome at scale: the streaming JSON reader and the threaded image checks.

The streamed index must be exactly the one `json.load` gives (both layouts,
entries cut across tiny buffers, unicode, nesting, whitespace); broken JSON
must fail with one line naming the file; the threaded checks must return
what one thread returns, in the same order.
"""

import json
import random
import time

import cv2
import numpy as np
import pandas as pd
import pytest
from test_validation import WORLD as VALIDATION_WORLD

from saldissect.data import inputs, synthetic
from saldissect.data.inputs import (
    InputError,
    JsonFileError,
    index_salicon_split,
    index_val_concepts,
    index_visual_genome,
    json_entries,
    parallel_map,
    read_visual_genome,
)
from saldissect.data.vocabulary import attribute_concept, keep_mask, object_concept

CHUNKS = [1, 2, 3, 7, 64, None]  # None: the default JSON_CHUNK

DOCUMENTS = [
    [],
    {},
    [1, -2.5e-3, 12345678901234567890, True, False, None, "x"],
    [{"a": [1, [2, [3, {"b": []}]]], "c": {"d": {}}}, [], {}, [[[]]]],
    {"1": {"name": "café", "tags": ["Ünïcode", "日本", "😀", "tab\there", 'q"uote\\']}},
    {"": 0, " spaced key ": [None], "k\u00e9y": {"nested": [{"x": 1.0}]}},
    ["a" * 100, "b" * 257, 10**30, -0.0, 1e300],
]


def write(path, document, *, indent=None, ensure_ascii=True):
    path.write_text(json.dumps(document, indent=indent, ensure_ascii=ensure_ascii), "utf-8")
    return path


def entries(document):
    return list(document.items()) if isinstance(document, dict) else list(enumerate(document))


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("layout", [None, 0, 2, "\n\t "])
@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_entries_are_exactly_what_json_load_gives(tmp_path, index, layout, chunk):
    document = DOCUMENTS[index]
    path = write(tmp_path / "doc.json", document, indent=layout, ensure_ascii=index % 2 == 0)
    container = dict if isinstance(document, dict) else list
    assert list(json_entries(path, container, chunk=chunk)) == entries(json.loads(path.read_text()))


def test_surrounding_whitespace_and_a_big_entry_across_many_chunks(tmp_path):
    big = [{"id": i, "names": [f"name {j} é" for j in range(i % 50)]} for i in range(300)]
    path = tmp_path / "big.json"
    path.write_text("\n\n  \t" + json.dumps(big, indent=3) + " \n\r\n", "utf-8")
    for chunk in (5, 1000, None):
        assert list(json_entries(path, list, chunk=chunk)) == entries(big)
    one = tmp_path / "one.json"
    write(one, [{"long": list(range(20000))}])  # one entry many times the buffer
    assert list(json_entries(one, list, chunk=16)) == [(0, {"long": list(range(20000))})]


def test_entries_are_read_lazily(tmp_path):
    path = write(tmp_path / "doc.json", [{"i": i} for i in range(1000)])
    stream = json_entries(path, list, chunk=64)
    assert next(stream) == (0, {"i": 0})  # without reading the rest
    stream.close()


def json_error(text):
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return str(error).splitlines()[0]
    return None


MALFORMED = [
    "",
    "   ",
    "[1, 2,, 3]",
    "[1, 2 3]",
    '[{"a": 1}, {"a" 2}]',
    '{"a": 1 "b": 2}',
    '{"a": 1, 2: 3}',
    '{"a" 1}',
    "[1] x",
    '{"a": 1}}',
    "[tru]",
    '["a\nb"]',
    "[1,\n 2,\n {\n  'a': 1}]",
    '{"1": {"w": 3,,}}',
]


@pytest.mark.parametrize("chunk", [1, 3, None])
@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_json_is_one_line_with_the_json_module_message(tmp_path, text, chunk):
    path = tmp_path / "broken.json"
    path.write_text(text, "utf-8")
    container = dict if text.lstrip().startswith("{") else list
    with pytest.raises(JsonFileError) as error:
        list(json_entries(path, container, chunk=chunk))
    file, reason = error.value.problem
    assert file == str(path) and "\n" not in reason
    assert reason.startswith(f"not valid JSON ({json_error(text)}")


def test_every_truncation_fails_naming_the_file_and_its_end(tmp_path):
    text = json.dumps([{"image_id": 1, "names": ["tree é", "sky"], "x": 12.5}, {"n": [[1], {}]}])
    path = tmp_path / "cut.json"
    for end in range(len(text)):
        path.write_text(text[:end], "utf-8")
        with pytest.raises(JsonFileError) as error:
            list(json_entries(path, list, chunk=4))
        file, reason = error.value.problem
        assert file == str(path) and "\n" not in reason
        assert reason.startswith(f"not valid JSON ({json_error(text[:end])}")
        assert reason.endswith("at the end of the file: truncated?)")


def test_wrong_top_level_not_json_not_utf8_and_missing_file(tmp_path):
    path = write(tmp_path / "a.json", {"1": 2})
    with pytest.raises(JsonFileError, match="expected a list of entries"):
        list(json_entries(path, list, "expected a list of entries"))
    write(path, 42)
    with pytest.raises(JsonFileError, match="expected a JSON list"):
        list(json_entries(path, list))
    path.write_text('{"1": 2} [')  # a wrong top level that is not even JSON: the JSON error
    with pytest.raises(JsonFileError, match="not valid JSON"):
        list(json_entries(path, list))
    path.write_bytes(b'[{"a": "\xff\xfe"}]')
    with pytest.raises(JsonFileError, match="not valid JSON .*not UTF-8"):
        list(json_entries(path, list))
    with pytest.raises(JsonFileError, match="Visual Genome file not found"):
        list(json_entries(tmp_path / "nope.json", list))


# ------------------------------------------- the index against json.load
OBJECT_NAMES = ["Trees", "men", "café table", "tennis  balls", "日本 cats", "giraffe", "", "sky"]
ATTRIBUTES = ["red", "Tall", "grün", "very  big", "", "wooden", "😀"]


def random_graphs(seed, n_images=30):
    """Sizes and per-image objects, some boxes with float coordinates."""
    rng = random.Random(seed)
    sizes, graphs = {}, {}
    for image_id in range(1, n_images + 1):
        h, w = rng.randint(30, 90), rng.randint(30, 90)
        sizes[image_id] = (h, w)
        objects = []
        for j in range(rng.randint(0, 7)):
            x, y = rng.randint(0, w // 2), rng.randint(0, h // 2)
            obj = {
                "object_id": image_id * 100 + j,
                "x": x + (0.5 if rng.random() < 0.1 else 0),
                "y": y,
                "w": rng.randint(1, w - x - 1),
                "h": rng.randint(1, h - y),
                "names": rng.sample(OBJECT_NAMES, rng.randint(1, 2)),
                "synsets": [["tree.n.01", [1, [2.5, {"deep": ["é"]}]]]],
            }
            if rng.random() < 0.8:
                obj["attributes"] = rng.sample(ATTRIBUTES, rng.randint(0, 3))
            objects.append(obj)
        graphs[image_id] = objects
    return sizes, graphs


def write_layouts(root, sizes, graphs, rng):
    root.mkdir(parents=True, exist_ok=True)
    kwargs = {"indent": rng.choice([None, 1, 4]), "ensure_ascii": rng.random() < 0.5}
    image_data = [
        {"image_id": i, "width": w, "height": h, "url": "http://x/é", "coco_id": None}
        for i, (h, w) in sizes.items()
    ]
    (root / "image_data.json").write_text(json.dumps(image_data, **kwargs), "utf-8")
    attributes = [{"image_id": i, "attributes": objs} for i, objs in graphs.items()]
    (root / "attributes.json").write_text(json.dumps(attributes, **kwargs), "utf-8")
    gqa = {
        str(i): {
            "width": sizes[i][1],
            "height": sizes[i][0],
            "objects": {
                str(o["object_id"]): {
                    **{k: v for k, v in o.items() if k not in ("names", "object_id")},
                    "name": o["names"][0],
                    "attributes": o.get("attributes", []),
                    "relations": [{"name": "on", "object": "7"}],
                }
                for o in objs
            },
        }
        for i, objs in graphs.items()
    }
    (root / "val_sceneGraphs.json").write_text(json.dumps(gqa, **kwargs), "utf-8")
    (root / "images").mkdir(exist_ok=True)
    for i, (h, w) in sizes.items():
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), np.full((h, w, 3), 99, np.uint8))


def reference_index(root, fmt, **cutoffs):
    """The index by json.load of the whole files, as the reader did before streaming."""
    if fmt == "visual_genome":
        sizes = {
            e["image_id"]: (e["height"], e["width"])
            for e in json.loads((root / "image_data.json").read_text("utf-8"))
        }
        graphs = [
            (e["image_id"], e["attributes"])
            for e in json.loads((root / "attributes.json").read_text("utf-8"))
        ]
    else:
        data = json.loads((root / "val_sceneGraphs.json").read_text("utf-8"))
        sizes = {i: (e["height"], e["width"]) for i, e in data.items()}
        graphs = [
            (i, [{**o, "names": [o["name"]]} for o in e["objects"].values()])
            for i, e in data.items()
        ]
    rows = []
    for image_id, objects in graphs:
        for o in objects:
            box = (o["x"], o["y"], o["w"], o["h"])
            rows += [(image_id, object_concept(n), "object", *box) for n in o["names"]]
            attributes = o.get("attributes", [])
            rows += [(image_id, attribute_concept(a), "attribute", *box) for a in attributes]
    columns = ["image_id", "concept", "kind", "x", "y", "w", "h"]
    concepts = pd.DataFrame([r for r in rows if r[1]], columns=columns)
    keep = keep_mask(concepts["concept"], concepts["kind"], **cutoffs)
    concepts = concepts[keep].reset_index(drop=True)
    ids = sorted(set(concepts["image_id"]))
    probe = pd.DataFrame(
        [(i, str(root / "images" / f"{i}.jpg"), *sizes[i]) for i in ids],
        columns=["image_id", "image_path", "height", "width"],
    )
    return probe, concepts


@pytest.mark.parametrize("chunk", [1, 5, 97, None])
@pytest.mark.parametrize("fmt", ["visual_genome", "gqa"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streamed_index_equals_the_json_load_index(tmp_path, monkeypatch, seed, fmt, chunk):
    rng = random.Random(seed)
    sizes, graphs = random_graphs(seed)
    if fmt == "gqa":
        sizes = {str(i): s for i, s in sizes.items()}
        graphs = {
            i: [{**o, "attributes": o.get("attributes", [])} for o in objs]
            for i, objs in graphs.items()
        }
    write_layouts(tmp_path, {int(i): s for i, s in sizes.items()}, graphs, rng)
    if chunk:
        monkeypatch.setattr(inputs, "JSON_CHUNK", chunk)
    cutoffs = {"min_object_count": 1 + seed, "min_attribute_count": 2, "keep_coco": seed == 1}
    probe, concepts, problems, fatal = index_visual_genome(
        tmp_path, scene_graphs=fmt, threads=3, **cutoffs
    )
    assert problems == [] and fatal == []
    want_probe, want_concepts = reference_index(tmp_path, fmt, **cutoffs)
    assert len(want_concepts) > 20
    pd.testing.assert_frame_equal(probe, want_probe)
    pd.testing.assert_frame_equal(concepts, want_concepts)
    floats = any(isinstance(o["x"], float) for objs in graphs.values() for o in objs)
    assert concepts["x"].dtype == (np.float64 if floats else np.int64)


def test_validation_concepts_stream_only_the_linked_images(tmp_path, monkeypatch):
    sizes, graphs = random_graphs(5, n_images=12)
    write_layouts(tmp_path, sizes, graphs, random.Random(5))
    data = json.loads((tmp_path / "image_data.json").read_text("utf-8"))
    for entry in data:
        entry["coco_id"] = 1000 + entry["image_id"] if entry["image_id"] % 3 else None
    (tmp_path / "image_data.json").write_text(json.dumps(data, indent=2))
    val = pd.DataFrame(
        {
            "image_id": [f"COCO_val2014_{1000 + i:012d}" for i in range(1, 13)],
            "height": [480] * 12,
            "width": [640] * 12,
        }
    )
    whole, problems = index_val_concepts(tmp_path, val)
    monkeypatch.setattr(inputs, "JSON_CHUNK", 3)
    streamed, problems_3 = index_val_concepts(tmp_path, val)
    pd.testing.assert_frame_equal(whole, streamed)
    assert problems == problems_3 == []
    linked = {f"COCO_val2014_{1000 + i:012d}" for i in sizes if i % 3 and graphs[i]}
    assert set(whole["image_id"]) <= linked and len(whole) > 10
    (tmp_path / "attributes.json").write_text('[{"image_id": 1, "attributes": [')
    concepts, problems = index_val_concepts(tmp_path, val)
    assert concepts.empty and len(problems) == 1 and "truncated?" in problems[0][1]


@pytest.mark.parametrize("name", ["attributes.json", "image_data.json"])
def test_truncated_visual_genome_file_is_one_error_line_naming_it(tmp_path, name):
    sizes, graphs = random_graphs(3)
    write_layouts(tmp_path, sizes, graphs, random.Random(3))
    path = tmp_path / name
    text = path.read_text("utf-8")
    path.write_text(text[: len(text) * 2 // 3], "utf-8")
    _, _, problems, fatal = index_visual_genome(tmp_path)
    assert problems == [] and len(fatal) == 1
    assert fatal[0][0] == str(path) and "not valid JSON" in fatal[0][1]
    with pytest.raises(InputError) as error:
        read_visual_genome(tmp_path)
    lines = str(error.value).splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"  {path}: not valid JSON (")


def test_both_broken_files_are_named(tmp_path):
    (tmp_path / "attributes.json").write_text("[{")
    _, _, _, fatal = index_visual_genome(tmp_path)
    assert [f.rsplit("/", 1)[-1] for f, _ in fatal] == ["image_data.json", "attributes.json"]
    assert "not found" in fatal[0][1] and "not valid JSON" in fatal[1][1]


def test_vectorised_cutoffs_are_keep_mask(tmp_path):
    rng = np.random.default_rng(0)
    names = list(rng.choice(["dog", "cat", "lamp", "red", "giraffe", "sky"], 400))
    kinds = list(rng.choice(["object", "attribute"], 400))
    boxes = inputs._Boxes()
    image = boxes.image(1)
    for name, kind in zip(names, kinds, strict=True):
        pair = ([name], []) if kind == "object" else ([], [name])
        boxes.add(image, (0, 0, 1, 1), 0, *pair)
    for cutoffs in ((1, 1, False), (70, 40, True), (40, 70, False), (999, 999, True)):
        names_ = ("min_object_count", "min_attribute_count", "keep_coco")
        options = dict(zip(names_, cutoffs, strict=True))
        got = boxes.keep(np.arange(400), **options)
        assert got.tolist() == keep_mask(names, kinds, **options).tolist(), cutoffs


# ---------------------------------------------------------- threaded checks
def test_parallel_map_keeps_the_order_and_raises():
    def slow(i):
        time.sleep(random.random() / 500)
        return i * i

    assert parallel_map(slow, range(300), threads=8, block=16) == [i * i for i in range(300)]
    assert parallel_map(slow, [], threads=4) == []

    def boom(i):
        if i == 7:
            raise RuntimeError("seven")
        return i

    with pytest.raises(RuntimeError, match="seven"):
        parallel_map(boom, range(20), threads=4)


WORLD = {
    **VALIDATION_WORLD,
    "seed": 1,
    "n_train": 24,
    "n_val": 6,
    "n_probe": 20,
    "objects_per_image": [1, 3],
}


def test_threaded_checks_return_what_one_thread_returns_in_order(tmp_path):
    synthetic.write_world(tmp_path, WORLD, progress=False)
    salicon, vg = tmp_path / "salicon", tmp_path / "visual_genome"
    images = sorted((salicon / "images/train").iterdir())
    images[3].write_bytes(images[3].read_bytes()[:200])  # truncated
    (salicon / "maps/train" / f"{images[5].stem}.png").unlink()
    cv2.imwrite(str(salicon / "maps/train" / f"{images[9].stem}.png"), np.zeros((5, 5), np.uint8))
    probes = sorted((vg / "images").iterdir())
    probes[2].unlink()
    probes[4].write_bytes(probes[4].read_bytes()[:150])
    one = index_salicon_split(salicon, "train", threads=1)
    for threads in (2, 8):
        many = index_salicon_split(salicon, "train", threads=threads)
        pd.testing.assert_frame_equal(one[0], many[0])
        assert one[1:] == many[1:]
    assert len(one[1]) == 3 and len(one[0]) == WORLD["n_train"] - 3
    one = index_visual_genome(vg, threads=1)
    for threads in (2, 8):
        many = index_visual_genome(vg, threads=threads)
        pd.testing.assert_frame_equal(one[0], many[0])
        pd.testing.assert_frame_equal(one[1], many[1])
        assert one[2:] == many[2:]
    assert len(one[2]) == 2 and len(one[0]) == len(probes) - 2
