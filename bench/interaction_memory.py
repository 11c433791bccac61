"""Peak memory of the interaction analyses and training on a 60 x 80 grid, N = 512.

Each measurement runs in a fresh process and reports the growth of the peak
resident set (``ru_maxrss``) over what the inputs already held, and the time:

- ``blocked``: `interactions.attention_statistics` (A in blocks of query rows,
  ``--budget`` MiB per block), the workflow's analysis kernel;
- ``whole``: the same statistics from the whole B x hw x hw attention (what
  the blocks avoid; 92 MB per image in float32);
- ``train``: one forward and backward pass of the interaction head (fused
  attention, `torch.nn.functional.scaled_dot_product_attention`).

    .venv/bin/python bench/interaction_memory.py --batch 8 --budget 256
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(mode: str, batch: int, budget: float, n: int, dim: int, grid: tuple[int, int]) -> dict:
    import torch

    from saldissect.interaction import interactions as inter

    torch.manual_seed(0)
    torch.set_num_threads(2)
    head = inter.InteractionHead(n, dim=dim)
    prob = torch.rand(batch, n, *grid)
    tau = torch.full((n,), 0.8)
    s = torch.rand(batch, *grid)
    if mode == "train":
        target = torch.rand(batch, 1, *grid)
    before = peak_mb()
    start = time.perf_counter()
    if mode == "blocked":
        inter.attention_statistics(head, prob, tau, s, attention_mb=budget)
    elif mode == "whole":
        with torch.no_grad():
            a = inter.attention(head, prob)
            binary = (prob > 0.8).flatten(2).transpose(1, 2).float()
            torch.einsum("bi,bij->bj", s.flatten(1), a)
            binary.transpose(1, 2) @ (a @ binary)
    else:
        loss = (head(prob, grid) - target).square().mean()
        loss.backward()
    seconds = time.perf_counter() - start
    return {
        "mode": mode,
        "batch": batch,
        "grid": f"{grid[0]}x{grid[1]}",
        "n_bases": n,
        "budget_mb": budget if mode == "blocked" else None,
        "inputs_mb": round(before, 1),
        "peak_growth_mb": round(peak_mb() - before, 1),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--train-batch", type=int, default=2)
    parser.add_argument("--budget", type=float, default=256.0)
    parser.add_argument("--n-bases", type=int, default=512)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--grid", type=int, nargs=2, default=[60, 80])
    parser.add_argument("--modes", nargs="*", default=["blocked", "whole", "train"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        batch = args.train_batch if args.child == "train" else args.batch
        result = measure(args.child, batch, args.budget, args.n_bases, args.dim, tuple(args.grid))
        print(json.dumps(result))
        return
    for mode in args.modes:
        child = [sys.executable, __file__, "--child", mode, *sys.argv[1:]]
        out = subprocess.run(child, capture_output=True, text=True, check=True)
        print(out.stdout.strip())


if __name__ == "__main__":
    main()
