"""dissection.iou against the obvious per-image/per-basis/per-concept loop.

Identical random inputs (B=8 images, N=512 bases, a 60x80 grid, K=30 concepts,
some of them empty). Prints the largest absolute difference, the speedup over
the loop, and the kernel's time relative to one read of the probability maps
(``prob.sum()``), all measured in this run. Also times the float32 matmul
path that GPUs take.

    .venv/bin/python bench/iou_speed.py [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from saldissect.dissection import _counts_float, iou


def reference_iou(
    prob: torch.Tensor, thresholds: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """The reference algorithm: one IoU at a time."""
    b_count, n_count, k_count = prob.shape[0], prob.shape[1], masks.shape[1]
    out = torch.zeros(b_count, n_count, k_count)
    for b in range(b_count):
        for n in range(n_count):
            basis = prob[b, n] > thresholds[n]
            for k in range(k_count):
                concept = masks[b, k]
                union = (basis | concept).sum()
                if union > 0:
                    out[b, n, k] = (basis & concept).sum() / union
    return out


def best_of_interleaved(fns, repeats: int, device: torch.device) -> list[float]:
    """Best time of each function, calling them in turn so all see the same machine state."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times, strict=True):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            record.append(time.perf_counter() - start)
    return [min(record) for record in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--bases", type=int, default=512)
    parser.add_argument("--concepts", type=int, default=30)
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    prob = torch.rand(args.images, args.bases, 60, 80, generator=gen)
    thresholds = torch.rand(args.bases, generator=gen) * 0.4 + 0.5
    masks = torch.rand(args.images, args.concepts, 60, 80, generator=gen) > 0.85
    masks[:, ::5] = False  # some concepts absent from every image
    start = time.perf_counter()
    slow = reference_iou(prob, thresholds, masks)
    loop_seconds = time.perf_counter() - start
    prob_d, thr_d, masks_d = prob.to(device), thresholds.to(device), masks.to(device)
    fast = iou(prob_d, thr_d, masks_d).cpu()
    kernel, one_read = best_of_interleaved(
        [lambda: iou(prob_d, thr_d, masks_d), lambda: prob_d.sum()], 30, device
    )
    # Timed apart: its large float32 temporaries would slow the calls around it.
    (float_kernel,) = best_of_interleaved(
        [lambda: _counts_float(prob_d, thr_d, masks_d)], 10, device
    )
    print(f"inputs: B={args.images} N={args.bases} grid=60x80 K={args.concepts} on {device}")
    print(f"max |fast - loop|            {float((fast - slow).abs().max()):.2e}")
    print(f"loop                          {loop_seconds:9.3f} s")
    print(f"batched kernel                {kernel:9.4f} s   speedup x{loop_seconds / kernel:,.0f}")
    print(
        f"one read of prob maps         {one_read:9.4f} s   kernel / read = {kernel / one_read:.2f}"
    )
    print(
        f"float32 matmul counts         {float_kernel:9.4f} s   "
        f"/ read = {float_kernel / one_read:.2f}  (the path GPUs take)"
    )


if __name__ == "__main__":
    main()
