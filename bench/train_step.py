"""Seconds per training step of a full-size model, with and without bf16 autocast.

One phase-one step (forward, the reference loss, backward, Adam) on random
images at the paper's input size (DINet and SALICON 480 x 640, TranSalNet
240 x 320), batch 10, ResNet-50 trunk with random weights. Data loading is
left out: this is the model's cost alone. On a GPU the bf16 line gives its
speedup over fp32, measured in the same run.

    .venv/bin/python bench/train_step.py [--arch dinet] [--device cuda] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from saldissect.models.networks import get_model
from saldissect.training.train import saliency_loss

SIZES = {"dinet": (480, 640), "salicon": (480, 640), "transalnet": (240, 320)}


def seconds_per_step(
    arch: str, device: torch.device, batch: int, steps: int, bf16: bool
) -> tuple[float, float]:
    """Mean seconds per step after one warm-up step, and the peak GPU memory in GiB."""
    torch.manual_seed(0)
    size = SIZES[arch]
    model = get_model(arch, head="factorised", input_size=size).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-7)
    images = torch.randn(batch, 3, *size, device=device)
    maps = torch.rand(batch, 1, *size, device=device)
    fixations = (torch.rand(batch, 1, *size, device=device) > 0.999).float()

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            saliency = model(images)["saliency"]
        loss, _ = saliency_loss(saliency.float(), maps, fixations)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocations, cuDNN autotuning (its trial workspaces are not counted)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="dinet", choices=sorted(SIZES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    height, width = SIZES[args.arch]
    print(f"{args.arch} phase one at {height}x{width}, batch {args.batch}, on {device}")
    fp32, peak = seconds_per_step(args.arch, device, args.batch, args.steps, bf16=False)
    print(f"fp32   {fp32:8.3f} s/step   {args.batch / fp32:8.2f} images/s   peak {peak:.1f} GiB")
    if device.type == "cuda":
        bf16, peak = seconds_per_step(args.arch, device, args.batch, args.steps, bf16=True)
        print(
            f"bf16   {bf16:8.3f} s/step   {args.batch / bf16:8.2f} images/s   peak {peak:.1f} GiB"
            f"   x{fp32 / bf16:.2f} over fp32"
        )


if __name__ == "__main__":
    main()
