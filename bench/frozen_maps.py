"""Phase two's P: recompute it from the frozen phase one each step, or read the float16 cache?

For the paper's models (full ResNet-50 trunks, 480 x 640 input, 512 bases)
times, per image, on this machine and in this run:

- ``recompute``: the frozen phase one's forward pass to P under ``no_grad``
  (what every phase-two and interaction step pays with ``frozen_maps:
  recompute``);
- ``read``: one sample of the cache (`saldissect.training.train.ProbCache`: a
  positioned read of its float16 P, straight after writing it, so from the
  page cache; a cold disk adds its own read time: 4.9 MB at the disk's rate);
- ``write``: the cache pass (forward + float16 write), paid once per run,

and prints the per-epoch cost of each mode over the paper's 30 epochs,
their ratio, and the cache's size for the paper's 15,000 images.

    .venv/bin/python bench/frozen_maps.py [--images 4] [--models dinet transalnet]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from saldissect.training.resources import cpu_model
from saldissect.training.train import ProbCache, build_model, write_prob_cache

SIZES = {"dinet": [480, 640], "salicon": [480, 640], "transalnet": [240, 320]}
EPOCHS, PAPER_IMAGES = 30, 15_000


def write_split(root: Path, n: int) -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        smap = cv2.GaussianBlur(rng.integers(0, 256, (480, 640), dtype=np.uint8), (0, 0), 20)
        fixations = np.zeros((480, 640), np.uint8)
        fixations[rng.integers(0, 480, 50), rng.integers(0, 640, 50)] = 255
        paths = {k: root / f"{k}{i}.png" for k in ("image", "map", "fix")}
        cv2.imwrite(str(paths["image"]), image)
        cv2.imwrite(str(paths["map"]), smap)
        cv2.imwrite(str(paths["fix"]), fixations)
        rows.append(
            {
                "image_id": i,
                "image_path": str(paths["image"]),
                "map_path": str(paths["map"]),
                "fixation_path": str(paths["fix"]),
                "height": 480,
                "width": 640,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--models", nargs="+", default=["dinet", "transalnet"])
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cpu")
    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        table = write_split(Path(tmp), args.images)
        for arch in args.models:
            cfg = {"arch": arch, "input_size": SIZES[arch], "n_bases": 512, "weights": "none"}
            model = build_model(cfg, "factorised").eval()
            size = tuple(SIZES[arch])
            image = torch.zeros(1, 3, *size, dtype=torch.uint8)
            with torch.no_grad():
                model(image)  # warm-up
                start = time.perf_counter()
                for _ in range(args.images):
                    prob = model(image)["prob"]
                recompute = (time.perf_counter() - start) / args.images
            path = Path(tmp) / f"{arch}.npy"
            start = time.perf_counter()
            write_prob_cache(model, table, size, path, batch_size=1, threads=1, device=device)
            write = (time.perf_counter() - start) / args.images
            cache = ProbCache(path, table, size)
            start = time.perf_counter()
            for i in range(args.images):
                cache[i]
            read_all = (time.perf_counter() - start) / args.images
            # the map and fixations are read in both modes: time them apart
            start = time.perf_counter()
            for i in range(args.images):
                cache.targets[i]
            targets = (time.perf_counter() - start) / args.images
            read = max(read_all - targets, 1e-6)
            per_image = cache.nbytes
            recompute_run = EPOCHS * recompute
            disk_run = write + EPOCHS * read
            print(
                f"{arch} ({tuple(prob.shape[1:])} P, {per_image / 2**20:.1f} MiB float16 per "
                f"image): recompute {recompute * 1e3:.0f} ms, read {read * 1e3:.1f} ms, "
                f"write {write * 1e3:.0f} ms per image; over {EPOCHS} epochs recompute "
                f"{recompute_run:.1f} s vs disk {disk_run:.1f} s per image "
                f"(x{recompute_run / disk_run:.1f}); cache for {PAPER_IMAGES} images "
                f"{PAPER_IMAGES * per_image / 1e9:.0f} GB"
            )


if __name__ == "__main__":
    main()
