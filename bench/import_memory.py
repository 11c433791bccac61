"""Importing a pysaliency dataset: time and peak memory against the number of stimuli.

    .venv/bin/python bench/import_memory.py --stimuli 100 400

For each size, a dataset of that many 480 x 640 JPEG stimuli (SALICON's size)
with 300 fixations each is written with pysaliency's own ``to_hdf5`` (a
``FileStimuli`` and a ``FixationTrains`` of 15 observers), then imported into
the SALICON layout (`saldissect.data.imports.import_dataset`) in a fresh
process, whose peak resident memory is read from ``getrusage``. The import
streams one stimulus at a time, so its memory should not grow with the number
of stimuli beyond the fixation arrays (a few bytes a fixation); the ratios are
against the smallest size, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH, OBSERVERS, PER_OBSERVER = 480, 640, 15, 20

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {src!r})
from saldissect.data.imports import import_dataset
cfg = json.loads(sys.argv[1])
start = time.perf_counter()
written = import_dataset(cfg, sys.argv[2])
print(json.dumps({{"seconds": time.perf_counter() - start, "written": written,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def write_dataset(folder: Path, count: int, seed: int = 0) -> tuple[Path, Path]:
    import pysaliency

    if "string_" not in vars(np):  # PyPI's pysaliency 0.2.22 writes with np.string_
        np.string_ = np.bytes_
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    files, xs, ys, ts, ns, subjects = [], [], [], [], [], []
    for n in range(count):
        path = folder / f"image_{n:06d}.jpg"
        pixels = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
        cv2.imwrite(str(path), cv2.resize(pixels, (WIDTH, HEIGHT)))
        files.append(str(path))
        for observer in range(OBSERVERS):
            xs.append(rng.uniform(0, WIDTH, PER_OBSERVER))
            ys.append(rng.uniform(0, HEIGHT, PER_OBSERVER))
            ts.append(np.arange(PER_OBSERVER, dtype=float))
            ns.append(n)
            subjects.append(observer)
    stimuli, fixations = folder / "stimuli.hdf5", folder / "fixations.hdf5"
    pysaliency.FileStimuli(files).to_hdf5(str(stimuli))
    pysaliency.FixationTrains.from_fixation_trains(xs, ys, ts, ns, subjects).to_hdf5(str(fixations))
    return stimuli, fixations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stimuli", type=int, nargs="+", default=[100, 400])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.stimuli:
            stimuli, fixations = write_dataset(Path(scratch) / f"data{count}", count)
            cfg = {
                "source": "pysaliency",
                "stimuli": str(stimuli),
                "fixations": str(fixations),
                "blur": {"sigma": 19, "unit": "pixels"},
                "val_fraction": 0.2,
                "split_seed": 0,
            }
            out = Path(scratch) / f"layout{count}"
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", CHILD.format(src=str(ROOT / "src")), json.dumps(cfg), out],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result.update(count=count, wall=time.perf_counter() - start)
            rows.append(result)
    base = rows[0]
    print(f"pysaliency import, {HEIGHT} x {WIDTH} JPEGs, {OBSERVERS * PER_OBSERVER} fixations each")
    print("| stimuli | import s | ms / stimulus | peak MB | peak vs smallest |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['count']} | {row['seconds']:.1f} | {1000 * row['seconds'] / row['count']:.1f} "
            f"| {row['peak_mb']:.0f} | {row['peak_mb'] / base['peak_mb']:.2f}x |"
        )


if __name__ == "__main__":
    main()
