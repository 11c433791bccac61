"""The workflow at the paper's shapes, at two data sizes: does any rule grow with the data?

Writes paper-shaped data twice, with N and factor x N training images:
SALICON-format 640 x 480 JPEG images, PNG maps and ``.mat`` gaze files
(val = N / 4), and a Visual Genome-format probe set (N / 2 images, about
1,500 object and 300 attribute names, 12-30 boxes an image). Runs the whole
workflow on each with a paper-shaped but CPU-cheap model: 480 x 640 input,
512 bases on the 60 x 80 grid, a narrow dilated trunk, one epoch a phase,
200 bootstrap replicates. Prints every rule's peak RSS (Snakemake's benchmark
``max_rss``) and wall time at both sizes, with their ratios (the time ratio
against the ratio of images the rule reads), and what each rule asked for.

    .venv/bin/python bench/paper_scale.py [--n 500] [--factor 4] [--cores 2] [--out DIR]

Figures go to ``DIR/paper_scale.md`` (and stdout); bench/record.py stores them for docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.io
import yaml

from saldissect.data.synthetic import _gaze_struct, saliency_map
from saldissect.training.resources import cpu_model

ROOT = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 480, 640
OBJECT_NAMES = [f"thing{i}" for i in range(1500)]
ATTRIBUTE_NAMES = [f"look{i}" for i in range(300)]

MODEL = {
    "arch": "dinet",
    "input_size": [HEIGHT, WIDTH],
    "n_bases": 512,
    "encoder_channels": 32,
    "encoder_dilations": [4, 8, 16],
    "weights": "none",
    "backbone": {
        "block": "basic",
        "layers": [1, 1, 1, 1],
        "widths": [8, 16, 16, 32],
        "stem_width": 8,
        "dilated": True,
    },
}
ONE_EPOCH = {
    "epochs": 1,
    "batch_size": 4,
    "lr": 1.0e-4,
    "weight_decay": 1.0e-7,
    "schedule": "step",
    "lr_decay_every": 2,
    "lr_decay": 0.1,
}


def _image(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    image = np.full((HEIGHT, WIDTH, 3), rng.integers(40, 200, 3), np.uint8)
    boxes = []
    for _ in range(int(rng.integers(12, 31))):
        w, h = (int(v) for v in rng.integers(30, 260, 2))
        x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(image, (x, y), (x + w, y + h), color, -1)
        boxes.append((x, y, w, h))
    noise = rng.integers(0, 24, image.shape, dtype=np.uint8)
    return cv2.add(image, noise), boxes


def write_salicon(root: Path, split: str, count: int, seed: int) -> None:
    for sub in ("images", "maps", "fixations"):
        (root / sub / split).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rng = np.random.default_rng([seed, i, 0 if split == "train" else 1])
        image, boxes = _image(rng)
        name = f"COCO_{split}2014_{i:012d}"
        cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), image)
        centres = np.array([(y + h // 2, x + w // 2) for x, y, w, h in boxes[:8]])
        points = centres[rng.integers(0, len(centres), 150)] + rng.normal(0, 25, (150, 2))
        points = np.clip(points, 0, [HEIGHT - 1, WIDTH - 1]).astype(np.int64)
        cv2.imwrite(
            str(root / "maps" / split / f"{name}.png"),
            saliency_map(points, (HEIGHT, WIDTH), 0.03),
        )
        scipy.io.savemat(
            root / "fixations" / split / f"{name}.mat",
            {
                "image": name,
                "resolution": np.array([[HEIGHT, WIDTH]], np.uint16),
                "gaze": _gaze_struct(points, 15, rng),
            },
        )


def write_visual_genome(root: Path, count: int, seed: int) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    image_data, attributes = [], []
    object_id = 1
    for i in range(count):
        rng = np.random.default_rng([seed, i, 2])
        image, boxes = _image(rng)
        image_id = i + 1
        cv2.imwrite(str(root / "images" / f"{image_id}.jpg"), image)
        image_data.append(
            {
                "image_id": image_id,
                "width": WIDTH,
                "height": HEIGHT,
                "url": "",
                "coco_id": None,
                "flickr_id": None,
            }
        )
        records = []
        for x, y, w, h in boxes:
            # a Zipf-like name frequency, as in Visual Genome
            name = OBJECT_NAMES[min(int(rng.zipf(1.3)) - 1, len(OBJECT_NAMES) - 1)]
            record = {"object_id": object_id, "x": x, "y": y, "w": w, "h": h, "names": [name]}
            if rng.random() < 0.5:
                record["attributes"] = [ATTRIBUTE_NAMES[int(rng.integers(len(ATTRIBUTE_NAMES)))]]
            records.append(record)
            object_id += 1
        attributes.append({"image_id": image_id, "attributes": records})
    (root / "image_data.json").write_text(json.dumps(image_data))
    (root / "attributes.json").write_text(json.dumps(attributes))
    objects = [
        {
            "image_id": a["image_id"],
            "objects": [{k: v for k, v in r.items() if k != "attributes"} for r in a["attributes"]],
        }
        for a in attributes
    ]
    (root / "objects.json").write_text(json.dumps(objects))


def config(data: Path, interactions: bool) -> dict:
    return {
        "preset": "paper",
        "threads": 2,
        "gpus": 0,
        "device": "cpu",
        "datasets": {
            "paper": {
                "source": "salicon",
                "salicon": str(data / "salicon"),
                "probe": str(data / "visual_genome"),
            }
        },
        "models": {"dinet_paper_shaped": MODEL},
        "vocabulary": {"min_object_count": 1, "min_attribute_count": 1},
        "train": {
            "phase1": ONE_EPOCH,
            "phase2": ONE_EPOCH,
            "interaction": ONE_EPOCH,
        },
        "thresholds": {"batch_size": 8},
        "dissection": {"batch_size": 8},
        "evaluation": {"variants": ["phase1", "phase2"], "batch_size": 8},
        "interaction": {"batch_size": 4, "enabled": interactions},
        "contributions": {"bootstrap": 200},
        "progressive": {"epochs": []},
        "failures": {"min_images": 3},
    }


def run(size: int, out: Path, cores: int, interactions: bool) -> tuple[pd.DataFrame, float]:
    work = out / f"n{size}"
    data = work / "data"
    if not (data / "done").exists():
        start = time.perf_counter()
        write_salicon(data / "salicon", "train", size, 0)
        write_salicon(data / "salicon", "val", size // 4, 0)
        write_visual_genome(data / "visual_genome", size // 2, 0)
        (data / "done").touch()
        print(f"n={size}: data written in {time.perf_counter() - start:.0f} s", flush=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config(data, interactions)))
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(work),
            "--cores",
            str(cores),
            "--configfile",
            str(work / "config.yaml"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"workflow failed at n={size}:\n{result.stderr[-4000:]}")
    rows = []
    for tsv in (work / "results/benchmarks").rglob("*.tsv"):
        bench = pd.read_csv(tsv, sep="\t")
        rows.append(
            {
                "rule": tsv.stem,
                "seconds": float(bench["s"].iloc[0]),
                "max_rss_mb": float(bench["max_rss"].iloc[0]),
            }
        )
    return pd.DataFrame(rows).groupby("rule").max(), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="training images of the small run")
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/saldissect-paper-scale"))
    parser.add_argument(
        "--no-interactions",
        action="store_true",
        help="leave out the interaction variant (interaction.enabled: false), the costliest "
        "stage on a CPU (about 1.5 s an image an epoch here)",
    )
    args = parser.parse_args()
    small, large = args.n, args.n * args.factor
    results = {}
    for size in (small, large):
        results[size] = run(size, args.out, args.cores, not args.no_interactions)
        print(f"n={size}: workflow {results[size][1] / 60:.1f} min", flush=True)
    a, b = results[small][0], results[large][0]
    table = a.add_suffix(f"_{small}").join(b.add_suffix(f"_{large}"), how="outer")
    table["rss_ratio"] = table[f"max_rss_mb_{large}"] / table[f"max_rss_mb_{small}"]
    table["time_ratio"] = table[f"seconds_{large}"] / table[f"seconds_{small}"]
    table = table.sort_values(f"seconds_{large}", ascending=False).round(2)
    lines = [
        f"# paper_scale: N = {small} vs {large} training images "
        f"(val N/4, probe N/2), {time.strftime('%Y-%m-%d')}",
        f"CPU: {cpu_model()}, {args.cores} cores; model: {json.dumps(MODEL['backbone'])}, "
        f"512 bases, 480x640 input"
        + ("; interaction variant left out" if args.no_interactions else ""),
        f"workflow wall time: {results[small][1] / 60:.1f} min vs {results[large][1] / 60:.1f} min",
        "",
        table.to_markdown(),
        "",
        f"largest RSS ratio: {table['rss_ratio'].max():.2f} ({table['rss_ratio'].idxmax()}); "
        f"largest time ratio: {table['time_ratio'].max():.2f} ({table['time_ratio'].idxmax()})",
    ]
    text = "\n".join(lines)
    print(text)
    (args.out / "paper_scale.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
