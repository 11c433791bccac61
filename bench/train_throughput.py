"""Training throughput with real data loading: images/s and the loader's share of the time.

Draws a synthetic world in the SALICON layout at a given image size in a
scratch folder, then runs phase-one epochs of a model read from a config file
(default: config/salicon.yaml's DINet) with the DataLoader workers the
workflow would use for ``--threads``, images decoded from disk every epoch
(no cache). Prints images/s and loader wait as a share of the epoch (target
< 10%), split into the wait for the first batch (workers start loading when
the epoch starts, so it weighs on short epochs) and the wait after it.

    .venv/bin/python bench/train_throughput.py [--model dinet] [--threads 8] [--bf16]
    .venv/bin/python bench/train_throughput.py --threads 16 --images 60 --load-only  # upper bound
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import torch
import yaml

from saldissect.data import synthetic
from saldissect.data.inputs import read_salicon_split
from saldissect.training.train import Trainer, _loaders, build_model, pick_device

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config/salicon.yaml")
    parser.add_argument("--model", default="dinet")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--load-only", action="store_true", help="only time the loading (no model, no device)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_cfg = yaml.safe_load(args.config.read_text())["models"][args.model]
    model_cfg = {**model_cfg, "weights": "none"}
    height, width = model_cfg["input_size"]
    world = yaml.safe_load((ROOT / "config/config.yaml").read_text())["synthetic"]
    world = {
        **world,
        "n_train": args.images,
        "n_val": args.batch_size,
        "n_probe": 1,
        "height": height,
        "width": width,
    }
    device = pick_device(args.device)
    cfg = {
        "batch_size": args.batch_size,
        "seed": 0,
        "cache_images": 0,
        "lr": 1e-4,
        "weight_decay": 1e-7,
        "schedule": "step",
        "lr_decay_every": 2,
        "lr_decay": 0.1,
        "epochs": args.epochs,
    }
    with tempfile.TemporaryDirectory() as scratch:
        synthetic.write_world(scratch, world, progress=False)
        train = read_salicon_split(Path(scratch) / "salicon", "train")
        val = read_salicon_split(Path(scratch) / "salicon", "val")
        train_loader, _ = _loaders(train, val, (height, width), cfg, args.threads, hflip=True)
        # What the workers can deliver: one sample decoded here, single-threaded
        # as in a worker, times the number of workers.
        cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        dataset = train_loader.dataset
        count = min(50, len(dataset))
        start = time.perf_counter()
        for index in range(count):
            dataset[index]
        per_sample = (time.perf_counter() - start) / count
        cv2.setNumThreads(cv_threads)
        workers = max(train_loader.num_workers, 1)
        print(
            f"one {height}x{width} sample: {1000 * per_sample:.1f} ms to load; {workers} "
            f"workers can deliver about {workers / per_sample:,.0f} images/s"
        )
        if args.load_only:
            return
        model = build_model(model_cfg, "factorised").to(device)
        trainer = Trainer(model, model.parameters(), cfg, Path(scratch), device, len(train_loader))

        def forward(batch):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                out = model(batch["image"].to(device, non_blocking=True))
            return out["saliency"].float(), out["prob"]

        print(
            f"{args.model} at {height}x{width}, batch {args.batch_size}, "
            f"{train_loader.num_workers} loader workers, bf16 {args.bf16}, on {device}"
        )
        for epoch in range(args.epochs):
            start = time.perf_counter()
            trainer.run_epoch(train_loader, forward, True, f"epoch {epoch}")
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            waited = trainer.loader_wait * seconds
            steady = (waited - trainer.loader_first) / max(seconds - trainer.loader_first, 1e-9)
            print(
                f"epoch {epoch}: {len(train) / seconds:7.1f} images/s, "
                f"loader wait {100 * trainer.loader_wait:4.1f}% of the epoch: "
                f"{trainer.loader_first:.2f} s before the first batch, "
                f"{100 * steady:4.1f}% after it"
            )


if __name__ == "__main__":
    main()
