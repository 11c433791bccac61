"""Threshold and dissection stages against a bare forward pass over the same images.

Builds the embedded default's model (random weights: timing does not depend on
training), draws a synthetic world in a scratch folder, and times
(a) `compute_thresholds` on the validation images plus `dissect` on the probe
images, and (b) a bare forward pass with the same model, batch size and image
loading over the same images. Prints (a) / (b); the target is <= 1.2.

    .venv/bin/python bench/stage_overhead.py [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from saldissect.analysis.dissection import compute_thresholds, dissect
from saldissect.core.config import load_schema, validate_config
from saldissect.data import synthetic
from saldissect.data.datasets import ImageDataset
from saldissect.data.inputs import read_salicon_split, read_visual_genome
from saldissect.training.train import build_model

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def bare_forward(model, table, size, batch_size, device) -> None:
    for batch in DataLoader(ImageDataset(table, size), batch_size=batch_size):
        model(batch["image"].to(device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    config = validate_config(
        yaml.safe_load((ROOT / "config/config.yaml").read_text()),
        load_schema(ROOT / "workflow/schemas/config.schema.yaml"),
    )
    model_cfg = config["models"]["dinet_small"]
    size = tuple(model_cfg["input_size"])
    model = build_model(model_cfg, "factorised").to(device).eval()
    with tempfile.TemporaryDirectory() as scratch:
        synthetic.write_world(scratch, {**config["synthetic"], "n_train": 1}, progress=False)
        val = read_salicon_split(Path(scratch) / "salicon", "val")
        probe, concepts = read_visual_genome(Path(scratch) / "visual_genome")
        batch = config["dissection"]["batch_size"]

        def stages():
            table = compute_thresholds(
                model, val, size, quantile=0.8, bins=10000, batch_size=batch, device=device
            )
            tau = torch.as_tensor(table["threshold"].to_numpy().copy(), dtype=torch.float32)
            dissect(
                model,
                probe,
                concepts,
                tau,
                size,
                min_cover=0.5,
                batch_size=batch,
                device=device,
                bootstrap=config["contributions"]["bootstrap"],
                keep_top=config["contributions"]["top_k"],
            )

        def forward():
            bare_forward(model, val, size, batch, device)
            bare_forward(model, probe, size, batch, device)

        timings = {"stages": [], "forward": []}
        for _ in range(args.repeats):
            for name, fn in (("forward", forward), ("stages", stages)):
                start = time.perf_counter()
                fn()
                timings[name].append(time.perf_counter() - start)
    stage, bare = min(timings["stages"]), min(timings["forward"])
    print(f"{len(val)} validation + {len(probe)} probe images, model dinet_small on {device}")
    print(f"bare forward pass          {bare:7.2f} s")
    print(f"thresholds + dissection    {stage:7.2f} s   ratio {stage / bare:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
