"""dissection.iou: every counting path against two loops and one read of the maps.

Identical random inputs: B=8 images, N=512 bases, a 60x80 grid, K=30 concepts
(every fifth empty in every image); ``--present P`` instead leaves only P
random concepts non-empty in each image, as in `dissect`, whose per-batch
masks hold every concept present somewhere in the batch (K') while one image
holds 10-40 of them. All baselines are timed in the same run, on the same CPU:

- the reference loop: per image, basis and concept, torch ops on the h x w
  masks (the algorithm as written in docs/method.md);
- the vectorised numpy loop: the same three loops (image, concept, basis),
  each step numpy boolean ops over the h x w cells
  (``np.count_nonzero(m & c)``, ``np.count_nonzero(m | c)``), the basis mask
  thresholded once per image and basis;
- one read of P: ``prob.sum()``, streaming all B x N x h x w float32 maps from
  memory once with torch's threads; every path must at least read P once to
  threshold it. The threshold pass alone is printed beside it. The read is
  timed interleaved with the kernels, as they are with each other, so none
  finds P left in the last-level cache by the call before: read back to back,
  P (79 MB) reads twice as fast on a CPU with a 32 MB L3 that keeps part of it.

Wall times are the best of ``--repeats`` interleaved runs. On a shared machine
other processes take the CPU for whole scheduler ticks, so each path is also
timed on one thread in that thread's CPU time, which they do not distort; the
calibration that picks the path (`dissection.calibrate_counting`) does the
same on a smaller problem.

Prints the CPU (model name, the flags that decide which path is fast, torch's
CPU capability, threads), each path's best time and its ratios, the path the
calibration chooses (what `dissect` uses) and the largest difference from the
reference loop (exact counts: 0).

    .venv/bin/python bench/iou_speed.py [--device cuda] [--concepts 160 --present 20]
    .venv/bin/python bench/iou_speed.py --emulate-avx2

``--emulate-avx2`` runs as on an AVX2 CPU without AVX512 or VNNI: oneDNN,
torch's kernels, MKL, numpy and numba's compiled loops are held to AVX2 (``ONEDNN_MAX_CPU_ISA`` and
the like, set before they load), and torch's oneDNN switch is turned off so
``torch._int_mm`` takes the plain loop that torch uses where the CPU has no
AVX512-VNNI. The printed CPU is still the real one.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from saldissect.analysis import dissection
from saldissect.analysis.dissection import COUNTING_PATHS, _counts_float, intersection_union, iou

FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
    "avx512_vpopcntdq",
    "popcnt",
)


AVX2_ENVIRONMENT = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "NUMBA_CPU_NAME": "haswell",  # numba compiles for an AVX2 CPU, not the host
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL "
    "AVX512_ICL AVX512_SPR AVX512_KNL AVX512_KNM",
}


def cpu_description() -> str:
    """Model name, the relevant /proc/cpuinfo flags, torch's capability and threads."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break  # the first processor's entry is complete here
    except OSError:
        pass
    present = [flag for flag in FLAGS if flag in flags]
    missing = [flag for flag in FLAGS if flag not in flags]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} CPUs, load average {load:.2f}; "
        f"flags {' '.join(present) or '?'} (no {' '.join(missing) or '-'}); "
        f"torch {torch.__version__} capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads, oneDNN "
        f"{'on' if torch.backends.mkldnn.enabled else 'off'}; numpy {np.__version__}"
    )


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


def numpy_loop_iou(prob: np.ndarray, thresholds: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Loops over images, bases and concepts; numpy boolean ops over the h x w cells."""
    b_count, n_count, k_count = prob.shape[0], prob.shape[1], masks.shape[1]
    out = np.zeros((b_count, n_count, k_count), np.float32)
    for b in range(b_count):
        for n in range(n_count):
            basis = prob[b, n] > thresholds[n]
            for k in range(k_count):
                union = np.count_nonzero(basis | masks[b, k])
                if union:
                    out[b, n, k] = np.count_nonzero(basis & masks[b, k]) / union
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


def timed_once(fn):
    """``fn()``, its wall time and the CPU time of this thread (numpy and small torch
    ops run here)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = fn()
    return result, time.perf_counter() - wall, time.thread_time() - cpu


def one_thread_cpu(fns, repeats: int) -> list[float]:
    """Best CPU time of each function on one torch thread, interleaved.

    CPU time of this thread does not count the time other processes hold the
    CPU, so on a shared machine it shows what each path costs; on one thread,
    torch's products and the kernel's thresholds and popcounts all run here.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = [[] for _ in fns]
        for _ in range(repeats):
            for fn, record in zip(fns, times, strict=True):
                start = time.thread_time()
                fn()
                record.append(time.thread_time() - start)
    finally:
        torch.set_num_threads(threads)
    return [min(record) for record in times]


def threshold_pass(prob: torch.Tensor, thresholds: torch.Tensor) -> None:
    """The CPU paths' threshold step alone, one image at a time into one buffer."""
    basis = np.empty(prob.shape[1:], bool)
    tau = thresholds.numpy().reshape(-1, 1, 1)
    for image in prob.numpy():
        np.greater(image, tau, out=basis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--bases", type=int, default=512)
    parser.add_argument("--concepts", type=int, default=30)
    parser.add_argument("--present", type=int, default=None, help="non-empty concepts per image")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--emulate-avx2", action="store_true", help="as on an AVX2-only CPU")
    args = parser.parse_args()
    if args.emulate_avx2:
        if any(os.environ.get(key) != value for key, value in AVX2_ENVIRONMENT.items()):
            # the libraries read these when they load: start again with them set
            os.execve(sys.executable, [sys.executable, *sys.argv], os.environ | AVX2_ENVIRONMENT)
        torch.backends.mkldnn.enabled = False
        print(
            "emulating an AVX2 CPU without AVX512 or VNNI: "
            + " ".join(f"{key}={value!r}" for key, value in AVX2_ENVIRONMENT.items())
            + ", torch.backends.mkldnn.enabled=False"
        )
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    prob = torch.rand(args.images, args.bases, 60, 80, generator=gen)
    thresholds = torch.rand(args.bases, generator=gen) * 0.4 + 0.5
    masks = torch.rand(args.images, args.concepts, 60, 80, generator=gen) > 0.85
    if args.present is None:
        masks[:, ::5] = False  # some concepts absent from every image
    else:
        keep = torch.rand(args.images, args.concepts, generator=gen).argsort(1) < args.present
        masks &= keep[:, :, None, None]

    print(f"CPU: {cpu_description()}")
    shape = f"B={args.images} N={args.bases} grid=60x80 K={args.concepts}"
    present = masks.flatten(2).any(2).sum(1).float().mean()
    print(f"inputs: {shape} ({present:.1f} concepts present per image) on {device}")

    (slow, loop_wall, loop_cpu) = timed_once(lambda: reference_iou(prob, thresholds, masks))
    (slow_numpy, numpy_wall, numpy_cpu) = timed_once(
        lambda: numpy_loop_iou(prob.numpy(), thresholds.numpy(), masks.numpy())
    )
    assert np.array_equal(slow_numpy, slow.numpy()), "the two loops disagree"

    prob_d, thr_d, masks_d = prob.to(device), thresholds.to(device), masks.to(device)
    if device.type == "cpu":
        calibration = dissection.calibrate_counting()
        chosen = dissection.counting_path(device)
        paths = list(calibration)
    else:
        calibration, chosen, paths = {}, "float", ["float"]
    fast = iou(prob_d, thr_d, masks_d).cpu()
    exact = all(torch.equal(iou(prob_d, thr_d, masks_d, path=path).cpu(), fast) for path in paths)
    fns = {
        path: (lambda path=path: intersection_union(prob_d, thr_d, masks_d, path=path))
        for path in paths
    }
    fns["auto"] = lambda: intersection_union(prob_d, thr_d, masks_d)
    fns["read"] = lambda: prob_d.sum()
    fns["threshold"] = (
        (lambda: threshold_pass(prob, thresholds))
        if device.type == "cpu"
        else (lambda: prob_d > thr_d.view(1, -1, 1, 1))
    )
    names = list(fns)
    wall = dict(
        zip(names, best_of_interleaved([fns[n] for n in names], args.repeats, device), strict=True)
    )
    cpu: dict[str, float] = {}
    if device.type == "cpu":
        # Timed apart: its large float32 temporaries would slow the calls around it.
        fns["float batched"] = lambda: _counts_float(prob_d, thr_d, masks_d)
        (wall["float batched"],) = best_of_interleaved(
            [fns["float batched"]], max(3, args.repeats // 4), device
        )
        # On one thread, in CPU time; a path many times slower than the others once.
        for repeats, group in (
            (5, [n for n in fns if wall[n] <= 8 * wall["auto"]]),
            (1, [n for n in fns if wall[n] > 8 * wall["auto"]]),
        ):
            cpu |= zip(group, one_thread_cpu([fns[n] for n in group], repeats), strict=True)

    print(f"max |fast - loop|             {float((fast - slow).abs().max()):.2e}")
    print(f"all paths identical           {exact}")
    print("baselines                          wall    one-thread CPU")
    print(f"reference loop (torch)       {loop_wall:9.3f} s   {loop_cpu:9.3f} s")
    print(f"vectorised numpy loop        {numpy_wall:9.3f} s   {numpy_cpu:9.3f} s")
    read, read_cpu = wall["read"], cpu.get("read", float("nan"))
    print(f"one read of P (prob.sum())   {read * 1e3:9.2f} ms  {read_cpu * 1e3:9.2f} ms")
    threshold, threshold_cpu = wall["threshold"], cpu.get("threshold", float("nan"))
    print(
        f"threshold pass alone         {threshold * 1e3:9.2f} ms  {threshold_cpu * 1e3:9.2f} ms"
        f"   ({threshold / read:.2f} / {threshold_cpu / read_cpu:.2f} reads)"
    )
    print(
        f"{'path':26s} {'wall':>9s}    / read  x ref loop  x numpy loop | "
        f"{'1-thread CPU':>12s}  / read  x ref  x numpy"
    )
    for name in [p for p in COUNTING_PATHS if p in wall] + ["float batched", "auto"]:
        if name not in wall:
            continue
        label = {"auto": f"chosen: {chosen}", "float batched": "float batched (GPU path)"}
        seconds, cpu_seconds = wall[name], cpu.get(name, float("nan"))
        print(
            f"{label.get(name, name):26s} {seconds * 1e3:9.2f} ms {seconds / read:6.2f}  "
            f"{loop_wall / seconds:10,.0f}  {numpy_wall / seconds:12,.0f} | "
            f"{cpu_seconds * 1e3:9.2f} ms {cpu_seconds / read_cpu:7.2f} "
            f"{loop_cpu / cpu_seconds:6,.0f}  {numpy_cpu / cpu_seconds:7,.0f}"
        )
    if calibration:
        detail = ", ".join(f"{p} {s * 1e3:.2f} ms" for p, s in calibration.items())
        print(f"calibration (one thread, 1 x 256 x 60x80 x 24, CPU time): {detail} -> {chosen}")
    auto = wall["auto"]
    met = numpy_wall / auto >= 20 and auto / read <= 4
    print(
        f"goal (>= x20 vs the numpy loop, <= 4x a read), wall: "
        f"x{numpy_wall / auto:,.0f}, {auto / read:.2f}x -> {'met' if met else 'NOT met'}"
    )
    if cpu:
        auto_cpu = cpu["auto"]
        met = numpy_cpu / auto_cpu >= 20 and auto_cpu / read_cpu <= 4
        print(
            f"goal, one-thread CPU time: x{numpy_cpu / auto_cpu:,.0f}, "
            f"{auto_cpu / read_cpu:.2f}x -> {'met' if met else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
