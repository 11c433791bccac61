"""What each rule asks a cluster for: memory and time from the data, the model and the batch.

One function, `estimate`, serves every rule (workflow/rules/common.smk calls it
through `get_resources`). Its model of a job:

- **memory** = a fixed process base (Python, PyTorch, loader workers) + the
  model's parameters (x4 when training with Adam: weights, gradients, two
  moments) + a batch's activations + the stage's own accumulators. A batch's
  activations are measured, not guessed: one forward pass on PyTorch's
  ``meta`` device (no memory, no compute) sums the outputs of every leaf
  module for one image; training keeps all of them for the backward pass,
  inference about the largest few. Stage accumulators: P of a batch for the
  stages on a frozen phase one, the attention of a batch for interactions,
  and the bootstrap state (R x N x K float32, twice for pooled IoU) for
  dissection. Nothing grows with the number of images: every stage streams.
- **time** = images x epochs x seconds per image (per stage, per device kind:
  ``SECONDS_PER_IMAGE`` of the paper's DINet at 480 x 640, scaled by the
  model's multiply-adds, counted in the same ``meta`` pass) + a fixed start-up.
- both are multiplied by ``attempt``: the Slurm profile retries a job that ran
  out of either with twice, then three times the first request.

The constants are conservative fits to `bench/paper_scale.py` (CPU) and the
projection in docs/results.md (GPU); `bench/paper_scale.py` prints requested vs
measured peak memory for every rule, so a drift shows.
"""

from __future__ import annotations

import json
import math
import platform
from functools import cache, lru_cache

BASE_MB = 1200  # an idle job: interpreter, torch, CUDA context or loader workers
TRAINING_STAGES = ("train_baseline", "train_phase1", "train_phase2", "train_interaction")
FROZEN_STAGES = ("train_phase2", "train_interaction", "cache_prob_maps")
FROZEN_MAPS = ("auto", "memory", "recompute", "disk")
# Seconds per image of the paper's DINet at 480 x 640 (forward and backward
# when training) on a 16-core CPU node and on one H200-class GPU; other models
# scale by their multiply-adds. docs/results.md ("P for phase two", "Other speed
# and throughput figures") has the measurements behind them.
SECONDS_PER_IMAGE = {"cpu": {"train": 3.0, "infer": 1.5}, "gpu": {"train": 0.015, "infer": 0.005}}
PAPER_DINET_GMACS = 200.0  # multiply-adds of one 480 x 640 image through the paper's DINet


@cache
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), to stand beside every timing."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def frozen_maps(mode: str, *, p_bytes: int, cache_mb: float, gpu: bool, disk: bool = True) -> str:
    """How phase two and the interaction variant get P of the frozen phase one.

    ``mode`` is ``train.<phase>.frozen_maps``; anything but ``auto`` stands.
    ``auto`` takes ``memory`` when ``p_bytes`` (float32 P of every train and
    val image) fits ``cache_mb``; otherwise ``disk`` on a CPU, where reading a
    cached map is about 20x cheaper than recomputing it, when the float16
    cache of rule cache_prob_maps can be had (``disk``), and ``recompute``
    on a GPU, where the forward pass costs about what the read does and the
    cache would need 74-295 GB per model (bench/frozen_maps.py).
    """
    if mode not in FROZEN_MAPS:
        raise ValueError(f"frozen_maps must be one of {FROZEN_MAPS}, got {mode!r}")
    if mode != "auto":
        return mode
    if p_bytes <= cache_mb * 2**20:
        return "memory"
    return "disk" if disk and not gpu else "recompute"


@lru_cache(maxsize=64)
def _profile(model_json: str, head: str) -> dict[str, float]:
    """Parameters, activations and multiply-adds of one image, from a ``meta``-device pass."""
    import torch

    from saldissect.models.networks import without_weights
    from saldissect.training.train import build_model

    cfg = json.loads(model_json)
    device = "meta"  # ImageNet weights are not read: only shapes matter
    try:
        with torch.device(device):
            model = build_model(without_weights(cfg), head)
    except (NotImplementedError, RuntimeError, TypeError):
        # a network from outside the package that cannot run on "meta": measure it for real
        device = "cpu"
        model = build_model(without_weights(cfg), head)
    sizes: list[int] = []
    macs = [0.0]

    def hook(module, _inputs, output):
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel())
            if isinstance(module, torch.nn.Conv2d):
                kernel = module.weight[0].numel()
                macs[0] += output.numel() * kernel
            elif isinstance(module, torch.nn.Linear):
                macs[0] += output.numel() * module.in_features

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    height, width = cfg.get("input_size", (480, 640))
    with torch.no_grad():
        out = model(torch.zeros(1, 3, height, width, dtype=torch.uint8, device=device))
    for handle in handles:
        handle.remove()
    grid = tuple(out["prob"].shape[-2:]) if "prob" in out else (1, 1)
    return {
        "params": float(sum(p.numel() for p in model.parameters())),
        "activations": float(sum(sizes)),
        "largest": float(max(sizes)),
        "macs": macs[0],
        "cells": float(grid[0] * grid[1]),
        "n_bases": float(getattr(model, "n_bases", 0)),
        "megapixels": height * width / 1e6,
    }


def prob_bytes(model_cfg: dict) -> int:
    """Bytes of one image's float32 P (N bases x the feature grid) for a ``models:`` entry."""
    profile = _profile(json.dumps(model_cfg, sort_keys=True), "factorised")
    return int(4 * profile["n_bases"] * profile["cells"])


def estimate(
    stage: str,
    model_cfg: dict,
    *,
    batch_size: int = 1,
    n_images: int = 0,
    epochs: int = 1,
    gpu: bool = False,
    attempt: int = 1,
    n_concepts: int = 0,
    bootstrap: int = 0,
    pooled: bool = False,
    held_mb: float = 0.0,
    frozen_maps: str = "recompute",
    attention_dim: int = 256,
    attention_mb: float = 256.0,
) -> dict[str, int]:
    """``{"mem_mb": host MB, "runtime": minutes, "device_mb": working set}`` for one job
    of ``stage`` (a rule name); ``device_mb`` is what a GPU job needs on the GPU.

    ``model_cfg`` is the run's ``models:`` entry; ``n_images`` the images the
    stage passes over per epoch;
    ``n_concepts`` and ``bootstrap`` size the dissection's state; ``held_mb``
    is data a stage keeps whole on purpose (P of a small split in memory);
    ``frozen_maps`` how phase two and the interaction variant get P (a
    recomputed P costs the frozen model's forward pass every step, a read one
    almost nothing); ``attention_dim`` and ``attention_mb`` are the
    interaction's query width and the analysis's block budget.
    """
    attempt = max(1, int(attempt))
    head = "plain" if stage == "train_baseline" else "factorised"
    profile = _profile(json.dumps(model_cfg, sort_keys=True), head)
    mb = 4 / 2**20  # float32 bytes, in MB
    training = stage in TRAINING_STAGES and stage not in FROZEN_STAGES
    if training:
        memory = 4 * profile["params"] * mb + batch_size * profile["activations"] * mb
    else:
        memory = profile["params"] * mb + 4 * batch_size * profile["largest"] * mb
    prob = batch_size * profile["n_bases"] * profile["cells"] * mb
    if stage in FROZEN_STAGES:
        memory += 4 * prob + held_mb
    cells, n_bases = profile["cells"], profile["n_bases"]
    if stage == "train_interaction":  # fused attention: queries, keys, values and their grads
        memory += 6 * batch_size * cells * (attention_dim + n_bases) * mb
    if stage == "analyse_interactions":  # one block of attention rows at a time
        memory += attention_mb + 4 * prob
        memory += 2 * 6 * 8 * n_concepts**2 / 2**20  # pair effects' K x K sums, their table
    if stage == "dissect_bases":
        memory += 4 * prob + bootstrap * profile["n_bases"] * n_concepts * mb * (3 if pooled else 2)
        memory += 4 * profile["n_bases"] * n_concepts * 8 / 2**20  # float64 sums
    if stage == "score_readouts":  # G (K x K float64), replicates, a batch's centred masks
        memory += 4 * prob + (8 * n_concepts**2 + 24 * bootstrap * n_concepts) / 2**20
        memory += 3 * batch_size * min(n_concepts, 500) * cells * mb
    # On a GPU the working set lives in device memory; the host keeps the
    # process, a copy of the weights and the loader's batches in flight.
    device_mb = memory
    if gpu:
        loader = 4 * batch_size * 3 * profile["megapixels"] * 1e6 / 2**20  # uint8, prefetched
        memory = profile["params"] * mb + loader
    memory += BASE_MB
    kind = "gpu" if gpu else "cpu"
    rates = SECONDS_PER_IMAGE[kind]
    scale = max(profile["macs"] / 1e9 / PAPER_DINET_GMACS, 1e-3)
    per_image = rates["train" if training else "infer"] * scale
    if stage in ("train_phase2", "train_interaction"):
        # the frozen forward when P is recomputed, next to nothing when it is read
        per_image = rates["infer"] * scale * (1.0 if frozen_maps == "recompute" else 0.02)
    if stage in ("train_interaction", "analyse_interactions"):
        # attention over every pair of cells: Q K^T and A P, x3 when training
        attention = 2 * cells**2 * (attention_dim + n_bases) / 1e9 / PAPER_DINET_GMACS
        per_image += rates["train"] * attention * (1 if stage == "train_interaction" else 1 / 3)
    minutes = 5 + n_images * epochs * per_image / 60
    return {
        "mem_mb": int(math.ceil(memory * attempt)),
        "runtime": int(math.ceil(minutes * attempt)),
        "device_mb": int(math.ceil(device_mb)),
    }
