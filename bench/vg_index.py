"""prepare_data at Visual Genome scale: streamed scene-graph index vs json.load, threaded checks.

Generates, in a temporary folder, a Visual Genome probe set of the real size
(108,077 images by default; ~1,500 object names, ~300 attribute names, 12-30
boxes per image (``--boxes``; the release averages ~35), written as the
release writes image_data.json and attributes.json; images are hard links to
one small JPEG, so that the probe checks run without 108k real files), then
in fresh child processes:

- indexes it with `inputs.index_visual_genome` (streamed), and a quarter
  of it, reporting wall time and the child's peak RSS (``ru_maxrss``);
- as the baseline, json.load of the same two files (what the reader did
  before: the whole JSON as Python objects, held while indexing);
- the RSS of a child that only imports the library, to subtract.

From the two index sizes it fits ``peak RSS = fixed + bytes per concept row``.
It then times the per-image checks on ``--jpegs`` generated 640x480 JPEGs (a
probe set) and SALICON samples (JPEG, PNG map, ``.mat`` gaze) at 1 thread and
at ``--threads``.

    .venv/bin/python bench/vg_index.py [--images 108077] [--boxes 12 30] [--threads 8]
        [--jpegs 300] [--only index|checks]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from saldissect.training.resources import cpu_model

SYLLABLES = "ba be bi bo bu ca ce co da de di do fa fe fi ga go ha he ho ka ke ki ko la le li lo"
SYLLABLES += " ma me mi mo na ne ni no pa pe pi po ra re ri ro sa se si so ta te ti to va ve vo"


def vocabulary(rng: np.random.Generator, count: int, words: tuple[int, int]) -> list[str]:
    """``count`` distinct pseudo-words of 2-4 syllables, some of them multi-word or plural."""
    syllables = SYLLABLES.split()
    names: set[str] = set()
    while len(names) < count:
        parts = [
            "".join(rng.choice(syllables, rng.integers(2, 5)))
            for _ in range(rng.integers(words[0], words[1] + 1))
        ]
        name = " ".join(parts)
        names.add(name + "s" if rng.random() < 0.2 else name)
    return sorted(names)


def write_probe_set(
    root: Path, quarter: Path, n_images: int, boxes_per_image=(12, 30), seed: int = 0
) -> dict:
    """image_data.json and attributes.json of ``n_images`` images (and of the first
    quarter of them under ``quarter``), streamed to disk one image at a time."""
    rng = np.random.default_rng(seed)
    objects = vocabulary(rng, 1500, (1, 2))
    attributes = vocabulary(rng, 300, (1, 1))
    # Zipf-like frequencies, as in Visual Genome: a few names are everywhere
    p_obj = 1 / np.arange(1, len(objects) + 1) ** 0.9
    p_obj /= p_obj.sum()
    p_att = 1 / np.arange(1, len(attributes) + 1) ** 0.9
    p_att /= p_att.sum()
    for folder in (root, quarter):
        folder.mkdir(parents=True, exist_ok=True)
    n_quarter = n_images // 4
    files = {
        name: [open(folder / f"{name}.json", "w") for folder in (root, quarter)]
        for name in ("image_data", "attributes")
    }
    object_id, boxes, rows = 1_000_000, 0, 0
    for handles in files.values():
        for handle in handles:
            handle.write("[")
    for i in range(n_images):
        image_id = i + 1
        width, height = (800, int(rng.integers(450, 800))) if i % 2 else (500, 333)
        info = {
            "width": width,
            "url": f"https://cs.stanford.edu/people/rak248/VG_100K/{image_id}.jpg",
            "height": height,
            "image_id": image_id,
            "coco_id": int(rng.integers(1, 600000)) if rng.random() < 0.47 else None,
            "flickr_id": int(rng.integers(1e8, 9e9)) if rng.random() < 0.85 else None,
        }
        count = int(rng.integers(boxes_per_image[0], boxes_per_image[1] + 1))
        x = rng.integers(0, width - 10, count)
        y = rng.integers(0, height - 10, count)
        w = (rng.random(count) * (width - x - 1)).astype(int) + 1
        h = (rng.random(count) * (height - y - 1)).astype(int) + 1
        names = rng.choice(len(objects), count, p=p_obj)
        n_attr = rng.choice(4, count, p=[0.35, 0.4, 0.18, 0.07])
        objs = []
        for j in range(count):
            name = objects[names[j]]
            attrs = [attributes[a] for a in rng.choice(len(attributes), n_attr[j], p=p_att)]
            obj = {
                "synsets": [f"{name.split()[-1]}.n.01"],
                "h": int(h[j]),
                "object_id": object_id,
                "merged_object_ids": [],
                "names": [name],
                "w": int(w[j]),
                "y": int(y[j]),
                "x": int(x[j]),
            }
            if attrs:
                obj["attributes"] = attrs
            objs.append(obj)
            object_id += 1
            rows += 1 + len(attrs)
        boxes += count
        texts = {
            "image_data": json.dumps(info),
            "attributes": json.dumps({"image_id": image_id, "attributes": objs}),
        }
        for name, text in texts.items():
            full, small = files[name]
            full.write(("" if i == 0 else ", ") + text)
            if i < n_quarter:
                small.write(("" if i == 0 else ", ") + text)
    for handles in files.values():
        for handle in handles:
            handle.write("]")
            handle.close()
    return {"boxes": boxes, "rows": rows}


def link_images(folder: Path, n_images: int) -> None:
    """One small JPEG, hard-linked as every ``<image_id>.jpg`` (a copy per 50,000 links:
    file systems cap the links of one file)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for image_id in range(1, n_images + 1):
        source = folder / f"source{image_id // 50_000}.jpg"
        if not source.exists():
            cv2.imwrite(str(source), np.full((24, 32, 3), 127, np.uint8))
        os.link(source, folder / f"{image_id}.jpg")


# ------------------------------------------------------------ child processes
def child(mode: str, root: str, images: str, threads: int) -> None:
    """One measurement in this fresh process; prints a JSON line."""
    from saldissect.data import inputs  # every child has the library's imports

    start = time.perf_counter()
    out: dict = {}
    if mode == "jsonload":
        data = [json.load(open(Path(root) / f"{n}.json")) for n in ("image_data", "attributes")]
        out["entries"] = len(data[1])
    else:
        if mode == "index":
            probe, concepts, problems, fatal = inputs.index_visual_genome(
                root, images=images, threads=threads
            )
            assert not fatal and not problems, (fatal, problems[:3])
            out.update(probe=len(probe), rows=len(concepts))
            out["table_mb"] = concepts.memory_usage(deep=True).sum() / 2**20
    out["seconds"] = time.perf_counter() - start
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(mode: str, root: Path, images: Path, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, str(root), str(images), str(threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"child {mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------ threaded checks
def write_checks(root: Path, count: int) -> tuple[Path, Path]:
    """``count`` 640x480 JPEG probe images, and a SALICON train split of them."""
    import cv2
    import scipy.io

    rng = np.random.default_rng(1)
    probe = root / "probe"
    salicon = root / "salicon"
    for kind in ("images", "maps", "fixations"):
        (salicon / kind / "train").mkdir(parents=True, exist_ok=True)
    probe.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:480, 0:640]
    for i in range(count):
        base = (np.sin(xx / (20 + i % 17)) + np.cos(yy / (15 + i % 11))) * 60 + 128
        image = np.clip(base[..., None] + rng.normal(0, 20, (480, 640, 3)), 0, 255).astype(np.uint8)
        name = f"COCO_train2014_{i:012d}"
        cv2.imwrite(str(probe / f"{i}.jpg"), image)
        shutil.copy(probe / f"{i}.jpg", salicon / "images/train" / f"{name}.jpg")
        saliency = np.exp(-((xx - 320.0) ** 2 + (yy - 240.0 - i % 50) ** 2) / 2e4) * 255
        cv2.imwrite(str(salicon / "maps/train" / f"{name}.png"), saliency.astype(np.uint8))
        gaze = np.zeros((5, 1), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")])
        for k in range(5):
            points = np.column_stack([rng.integers(1, 641, 8), rng.integers(1, 481, 8)])
            gaze[k, 0]["fixations"] = points.astype(np.float64)
            gaze[k, 0]["location"] = points.astype(np.float64)
            gaze[k, 0]["timestamp"] = np.arange(8, dtype=np.float64)[:, None]
        scipy.io.savemat(
            salicon / "fixations/train" / f"{name}.mat",
            {"image": name, "resolution": np.array([[480, 640]]), "gaze": gaze},
        )
    return probe, salicon


def time_checks(probe: Path, salicon: Path, threads: list[int]) -> list[tuple]:
    from saldissect.data import inputs

    jpegs = sorted(probe.glob("*.jpg"))
    best: dict = {}
    for _ in range(5):  # interleaved, so that every thread count sees the same machine load
        for n in threads:
            start = time.perf_counter()
            reasons = inputs.parallel_map(inputs.image_size, jpegs, n)
            best.setdefault(("probe JPEG decode", n), []).append(time.perf_counter() - start)
            assert all(r[1] is None for r in reasons)
            start = time.perf_counter()
            table, problems, fatal = inputs.index_salicon_split(salicon, "train", threads=n)
            what = "SALICON sample (jpg+png+mat)"
            best.setdefault((what, n), []).append(time.perf_counter() - start)
            assert len(table) == len(jpegs) and not problems and not fatal
    return sorted((what, n, min(seconds)) for (what, n), seconds in best.items())


def bench_index(args, tmp: Path) -> None:
    full, quarter = tmp / "vg", tmp / "vg_quarter"
    start = time.perf_counter()
    counts = write_probe_set(full, quarter, args.images, args.boxes)
    link_images(full / "images", args.images)
    print(
        f"generated {args.images:,} images, {counts['boxes']:,} boxes, "
        f"{counts['rows']:,} concept rows in {time.perf_counter() - start:.0f} s:"
    )
    for path in sorted(full.glob("*.json")) + sorted(quarter.glob("*.json")):
        print(f"  {path.relative_to(tmp)}: {path.stat().st_size / 1e6:,.1f} MB")
    images = full / "images"
    base = measure("imports", full, images, 1)
    small = measure("index", quarter, images, args.threads)
    large = measure("index", full, images, args.threads)
    old = measure("jsonload", full, images, 1)
    print(f"\nchild that only imports saldissect.data.inputs: peak RSS {base['peak_mb']:.0f} MB")
    print("| what | images | rows | wall s | peak RSS MB | over imports MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for what, n, r in (
        (f"index (streamed, {args.threads} threads)", args.images // 4, small),
        (f"index (streamed, {args.threads} threads)", args.images, large),
        ("json.load of both files (old reader, parse only)", args.images, old),
    ):
        print(
            f"| {what} | {n:,} | {r.get('rows', 0):,} | {r['seconds']:.1f} | "
            f"{r['peak_mb']:.0f} | {r['peak_mb'] - base['peak_mb']:.0f} |"
        )
    over_old, over_new = old["peak_mb"] - base["peak_mb"], large["peak_mb"] - base["peak_mb"]
    print(
        f"\njson.load / streamed peak RSS: {old['peak_mb'] / large['peak_mb']:.1f}x "
        f"({over_old / max(1, over_new):.1f}x over the imports); time of json.load "
        f"alone / the whole streamed index: {old['seconds'] / large['seconds']:.2f}"
    )
    per_row = (large["peak_mb"] - small["peak_mb"]) * 2**20 / (large["rows"] - small["rows"])
    fixed = over_new - per_row * large["rows"] / 2**20
    print(
        f"fit: peak RSS = imports ({base['peak_mb']:.0f} MB) + {fixed:.0f} MB "
        f"+ {per_row:.0f} bytes per concept row (the concepts table itself: "
        f"{large['table_mb'] * 2**20 / large['rows']:.0f} bytes per row)"
    )


def bench_checks(args, tmp: Path) -> None:
    probe, salicon = write_checks(tmp / "checks", args.jpegs)
    threads = sorted({1, args.threads})
    rows = time_checks(probe, salicon, threads)
    load = os.getloadavg()[0]
    print(
        f"\nper-image checks, {args.jpegs} images 640x480, best of 5 interleaved "
        f"(load average {load:.1f} on {os.cpu_count()} cores):"
    )
    print("| check | threads | seconds | images/s | speedup |")
    print("|---|---:|---:|---:|---:|")
    one = {what: s for what, n, s in rows if n == 1}
    for what, n, seconds in rows:
        print(
            f"| {what} | {n} | {seconds:.2f} | {args.jpegs / seconds:.0f} | "
            f"{one[what] / seconds:.2f} |"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=108_077)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--boxes", type=int, nargs=2, default=(12, 30), metavar=("MIN", "MAX"))
    parser.add_argument("--jpegs", type=int, default=300)
    parser.add_argument("--only", choices=("index", "checks"), default=None)
    parser.add_argument("--tmp", default=None, help="folder for the generated files")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores visible; threads for checks: {args.threads}")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        if args.only != "checks":
            bench_index(args, Path(tmp))
        if args.only != "index":
            bench_checks(args, Path(tmp))


if __name__ == "__main__":
    main()
