"""Adaptive thresholds: one streaming histogram pass against the reference procedure.

The reference counts, for every batch and every basis, the activations in each
of 100 intervals with a Python loop, then reads the quantile off the
cumulative counts. `BasisHistogram` does one bincount per batch, with memory
independent of the number of images. Both see identical random batches; the
script prints the speedup and the largest threshold difference (which must
stay within the reference's bin width, 0.01).

    .venv/bin/python bench/thresholds_speed.py
"""

from __future__ import annotations

import argparse
import time

import torch

from saldissect.analysis.dissection import BasisHistogram


def reference_thresholds(batches, n_bases: int, quantile: float, intervals: int = 100):
    counts = torch.zeros(n_bases, intervals, dtype=torch.float64)
    for prob in batches:
        for n in range(n_bases):
            values = prob[:, n]
            for i in range(intervals):
                low, high = i / intervals, (i + 1) / intervals
                upper = values <= high if i == intervals - 1 else values < high
                counts[n, i] += ((values >= low) & upper).sum()
    cdf = counts.cumsum(1) / counts.sum(1, keepdim=True)
    first = (cdf >= quantile).float().argmax(1)  # the bin edge where q is reached
    return (first + 1).double() / intervals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bases", type=int, default=512)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.bases, 30, 40)
    batches = [torch.rand(shape, generator=gen) ** 3 for _ in range(args.batches)]
    start = time.perf_counter()
    reference = reference_thresholds(batches, args.bases, 0.8)
    reference_seconds = time.perf_counter() - start
    start = time.perf_counter()
    histogram = BasisHistogram(args.bases, bins=10000)
    for prob in batches:
        histogram.update(prob)
    ours, _ = histogram.quantile(0.8)
    ours_seconds = time.perf_counter() - start
    values = torch.cat([b.transpose(0, 1).reshape(args.bases, -1) for b in batches], 1)
    exact = torch.quantile(values.double(), 0.8, dim=1)
    print(f"{args.batches} batches of {shape}")
    print(f"reference (100 intervals, loops) {reference_seconds:8.3f} s")
    speedup = reference_seconds / ours_seconds
    print(f"streaming histogram              {ours_seconds:8.3f} s   speedup x{speedup:,.0f}")
    print(f"max |ours - reference|   {float((ours - reference).abs().max()):.4f} (bin width 0.01)")
    print(f"max |ours - exact|       {float((ours - exact).abs().max()):.5f}")


if __name__ == "__main__":
    main()
