"""Pretrain a CPU-sized backbone to segment the synthetic world's concepts.

The paper's models start from an ImageNet backbone, whose features already
tell concepts apart; the embedded default starts from random weights. This
script gives the synthetic world's backbone the analogue: it draws images the
world never uses (its own seed, every concept the world can draw, planted
weights irrelevant), and trains the backbone of a configured model with a 1x1
convolution predicting, at every grid cell, which concepts' boxes cover it
(binary cross-entropy). The backbone's state dict is written in the form
``models.<name>.weights`` loads, e.g.

    .venv/bin/python bench/pretrain_backbone.py --out /tmp/backbone.pt
    make sweep SNAKEMAKE_ARGS="--configfile backbone.yaml"

with backbone.yaml setting ``models.dinet_small.weights: /tmp/backbone.pt``.

It prints the loss and the cell accuracy per epoch. (In docs/results.md, "The
paper's readout under other settings", it did not fix the weak concepts' signs.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as nnf
import yaml
from torch import nn
from tqdm import tqdm

from saldissect.analysis.dissection import coverage_masks
from saldissect.data import synthetic
from saldissect.models.networks import IMAGENET_MEAN, IMAGENET_STD, ResNetBackbone

ROOT = Path(__file__).resolve().parents[1]


def draw(n: int, cfg: dict, stride: int, min_cover: float, seed: int):
    """``n`` images (uint8, N x H x W x 3) and their concept masks on the grid."""
    names = list(synthetic.CONCEPTS)
    cfg = {**cfg, "interaction": None}
    rng = np.random.default_rng(seed)
    height, width = cfg["height"], cfg["width"]
    rows, cols = height // stride, width // stride
    images = np.zeros((n, height, width, 3), np.uint8)
    masks = np.zeros((n, len(names), rows, cols), np.float32)
    for i in tqdm(range(n), desc="drawing", unit="image"):
        scene = synthetic.draw_scene(rng, dict.fromkeys(names, 0.0), cfg)
        images[i] = scene.image
        boxes = [[] for _ in names]  # each concept's boxes; an attribute takes its object's
        for obj in scene.objects:
            for concept in (obj["name"], *obj["attributes"]):
                boxes[names.index(concept)].append(obj["box"])
        masks[i] = coverage_masks(boxes, (height, width), (rows, cols), min_cover).numpy()
    return images, masks, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the state dict goes")
    parser.add_argument("--model", default="dinet_small", help="a model of config/config.yaml")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=12345, help="not a seed the world uses")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    backbone = ResNetBackbone(**config["models"][args.model].get("backbone", {}))
    images, masks, names = draw(
        args.images,
        config["synthetic"],
        backbone.stride,
        config["dissection"]["min_cover"],
        args.seed,
    )
    head = nn.Conv2d(backbone.out_channels, len(names), 1)
    parameters = list(backbone.parameters()) + list(head.parameters())
    optimiser = torch.optim.Adam(parameters, args.lr, weight_decay=1e-5)
    steps = args.epochs * -(-args.images // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=steps)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2)
    targets = torch.from_numpy(masks)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(args.images)
        loss_sum = correct = 0.0
        for first in range(0, args.images, args.batch_size):
            index = order[first : first + args.batch_size]
            x = (pixels[index].float() / 255.0 - mean) / std
            y = targets[index]
            if torch.rand(()) < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            logits = head(backbone(x))
            loss = nnf.binary_cross_entropy_with_logits(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            loss_sum += loss.item() * len(index)
            correct += ((logits > 0) == (y > 0)).float().mean().item() * len(index)
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / args.images:.4f}, "
            f"cell accuracy {correct / args.images:.4f} ({time.perf_counter() - start:.0f} s)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(backbone.state_dict(), args.out)
    print(f"backbone weights: {args.out}")


if __name__ == "__main__":
    main()
