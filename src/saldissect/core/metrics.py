"""Saliency evaluation metrics: pure numpy kernels, no I/O.

The definitions are those of the Python evaluation code saliency work is
scored with: pysaliency (github.com/matthias-k/pysaliency,
``pysaliency/metrics.py`` and ``roc_cython.pyx``, which the MIT/Tuebingen
benchmark runs) and the reference code's ``cal_*_score`` functions. They
follow the MIT benchmark's MATLAB code (github.com/cvzoya/saliency,
``code_forMetrics/``) except in two documented places (the standard deviation
of NSS and the min-max step of SIM); where the MATLAB code returns NaN or is
random, the choices below are documented.  All functions take 2-D
arrays of any real dtype, compute in float64 and return Python floats.

Conventions
-----------
* ``pred`` and the reference map (``gt`` / ``fixations`` / ``other_fixations``)
  must have the same shape, else ``ValueError`` naming both shapes (the MIT
  code instead ``imresize``-s the prediction to the reference size: resize
  before calling).  Inputs that are not 2-D, are empty, or contain NaN or inf
  raise ``ValueError`` (NaN is reported as ``"<name> contains NaN"``).
* Fixation maps are binary-or-count maps: a pixel is fixated iff its value is
  > 0, and a pixel fixated k times counts once (MIT benchmark semantics:
  ``logical(fixationMap)`` / ``fixationMap > 0``).  Negative fixation values
  raise ``ValueError``.
* ``cc`` is Pearson's r (``CC.m``: z-score both maps, then ``corr2``).
* ``sim`` normalises each map to sum 1 and sums the pixelwise minimum
  (pysaliency, the reference code). A map with negative values is first
  min-max normalised to [0, 1] (as pysaliency does). MIT's ``similarity.m``
  min-max normalises every map, so maps whose minimum is well above zero
  score differently there.
* ``kld(pred, gt)`` is KL(gt || pred) on the maps normalised to sum 1 (no
  min-max): ``sum gt * log(eps + gt / (pred + eps))`` with
  ``eps = np.finfo(np.float64).eps`` (MATLAB ``eps``; ``KLdiv.m``).  Its inputs
  must be non-negative (else ``ValueError``).  It can be ~1e-16 below zero for
  identical maps.
* ``nss`` standardises the prediction with ``np.std`` (ddof=0), as pysaliency,
  the SALICON evaluation code and the reference code do. MATLAB's ``std`` in
  ``NSS.m`` is the sample deviation (ddof=1): the MIT value is ours times
  ``sqrt((N - 1) / N)`` for an N-pixel map (3e-6 relative at 480 x 640).
* Degenerate inputs give defined values, never NaN, never an exception (the
  MIT code returns NaN for most of these): ``cc`` is 0.0 if either map is
  constant; for ``sim`` and ``kld`` a constant map (for ``kld``: an all-zero
  map) is treated as the uniform distribution, as pysaliency does (the MIT
  code keeps an all-zero map at zero); ``nss`` is 0.0 for a constant
  prediction or an empty fixation map; ``auc_judd`` and ``sauc`` are 0.5 for
  a constant prediction, no fixations, or no negatives.
* ``auc_judd`` uses no random jitter (``AUC_Judd.m`` adds ``rand / 1e7``
  before ranking): tied saliency values are handled deterministically by the
  ``>=`` threshold rule (a tie block becomes one linear ROC segment), which
  is pysaliency's ``general_roc(..., judd=1)`` without its noise.
* ``information_gain`` (``ig``) turns both the prediction and the baseline
  into densities (each divided by its sum, then mixed with ``IG_UNIFORM`` of
  the uniform density) and averages ``log2 p - log2 b`` over the fixations,
  repeats counted (the MIT/Tuebingen benchmark, pysaliency's
  ``information_gain``). The benchmark first fits a model's map to a density
  (a pointwise nonlinearity, a centre bias, a blur); this divides by the sum.
* ``sauc`` is the exact Mann-Whitney probability P(pos > neg) + 0.5 P(pos ==
  neg) against all other-image fixated pixels (pysaliency's
  ``general_roc(..., judd=0)``), not ``AUC_shuffled.m``'s 100 random
  subsets scored at thresholds 0:0.1:1, which can differ by several hundredths.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

METRICS: tuple[str, ...] = ("cc", "sim", "kld", "nss", "auc_judd", "sauc", "ig")
#: Metrics scored at fixations (the others compare two maps): with per-fixation
#: averaging an image's score counts as many times as it has fixations.
FIXATION_METRICS: tuple[str, ...] = ("nss", "auc_judd", "sauc", "ig")
#: The uniform share mixed into both densities of `information_gain`, so that a
#: pixel a map gives zero costs a bounded number of bits.
IG_UNIFORM = 1e-3

_EPS = float(np.finfo(np.float64).eps)


def _as_map(x: ArrayLike, name: str) -> np.ndarray:
    """Return ``x`` as a validated 2-D finite float64 array."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains inf")
    return arr


def _pair(a: ArrayLike, b: ArrayLike, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``pred`` (``a``) and a reference map (``b``) of equal shape."""
    pred, ref = _as_map(a, "pred"), _as_map(b, name_b)
    if pred.shape != ref.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs {name_b} {ref.shape}")
    return pred, ref


def _fixation_mask(fix: np.ndarray, name: str) -> np.ndarray:
    """Binary mask of fixated pixels (value > 0); counts collapse to one."""
    if (fix < 0).any():
        raise ValueError(f"{name} must be non-negative")
    return fix > 0


def _uniform(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, 1.0 / np.prod(shape))


def _distribution(x: np.ndarray, name: str) -> np.ndarray:
    """Normalise a non-negative map to sum 1; an all-zero map becomes uniform."""
    if (x < 0).any():
        raise ValueError(f"{name} must be non-negative")
    total = x.sum()
    if total == 0:
        return _uniform(x.shape)
    return x / total


def _minmax_distribution(x: np.ndarray) -> np.ndarray:
    """Min-max normalise to [0, 1], then to sum 1 (``similarity.m``).

    A constant map (min-max undefined) becomes uniform.
    """
    lo, hi = x.min(), x.max()
    if hi == lo:
        return _uniform(x.shape)
    y = (x - lo) / (hi - lo)
    return y / y.sum()


def _is_constant(x: np.ndarray) -> bool:
    return bool(x.max() == x.min())


def cc(pred: ArrayLike, gt: ArrayLike) -> float:
    """Pearson correlation coefficient (MIT ``CC.m``); 0.0 if either map is constant."""
    p, g = _pair(pred, gt, "gt")
    if _is_constant(p) or _is_constant(g):
        return 0.0
    a, b = p - p.mean(), g - g.mean()
    r = np.sum(a * b) / (np.sqrt(np.sum(a * a)) * np.sqrt(np.sum(b * b)))
    return float(np.clip(r, -1.0, 1.0))


def _sim_distribution(x: np.ndarray) -> np.ndarray:
    """Sum to 1; a map with negative values is min-max normalised first."""
    if x.min() < 0:
        return _minmax_distribution(x)
    return _distribution(x, "map")


def sim(pred: ArrayLike, gt: ArrayLike) -> float:
    """Similarity (histogram intersection): ``sum(min(pred, gt))`` of maps summing to 1.

    Non-negative maps are divided by their sums (pysaliency, the reference
    code); a map with negative values is min-max normalised first. A constant
    map becomes uniform. (MIT ``similarity.m`` min-max normalises every map.)
    """
    p, g = _pair(pred, gt, "gt")
    return float(np.minimum(_sim_distribution(p), _sim_distribution(g)).sum())


def kld(pred: ArrayLike, gt: ArrayLike) -> float:
    """KL(gt || pred) with the MIT benchmark's eps regularisation (``KLdiv.m``).

    Both maps are normalised to sum 1 (no min-max), then
    ``sum gt * log(eps + gt / (pred + eps))`` with MATLAB's ``eps`` (2^-52).
    """
    p, g = _pair(pred, gt, "gt")
    p, g = _distribution(p, "pred"), _distribution(g, "gt")
    return float(np.sum(g * np.log(_EPS + g / (p + _EPS))))


def nss(pred: ArrayLike, fixations: ArrayLike) -> float:
    """Mean standardised prediction over the fixated pixels.

    The prediction is standardised with its mean and ``np.std`` (ddof=0, as
    pysaliency and the reference code; MIT ``NSS.m`` uses ddof=1); each
    fixated pixel counts once.
    """
    p, f = _pair(pred, fixations, "fixations")
    mask = _fixation_mask(f, "fixations")
    if not mask.any() or _is_constant(p):
        return 0.0
    z = (p - p.mean()) / p.std()
    return float(z[mask].mean())


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def auc_judd(pred: ArrayLike, fixations: ArrayLike) -> float:
    """AUC-Judd (MIT ``AUC_Judd.m``): ROC over thresholds at fixated values.

    For each distinct threshold t among the fixated values, TP rate is the
    fraction of fixated pixels with saliency >= t and FP rate the fraction of
    non-fixated pixels with saliency >= t; (0, 0) and (1, 1) are added and the
    area is taken by the trapezoid rule.  Without ties this is exactly the MIT
    value.  The MIT code breaks ties with random jitter (``rand / 1e7``); here
    equal values give a single ROC point instead, deterministically (equal to
    pysaliency's ``general_roc(..., judd=1)`` without its noise).  The jittered
    MIT value scatters around this one: by < 0.005 for realistic maps, more on
    tiny maps with large tied regions, where the MIT value itself varies from
    one jitter draw to the next.
    """
    p, f = _pair(pred, fixations, "fixations")
    mask = _fixation_mask(f, "fixations")
    pos, neg = np.sort(p[mask]), np.sort(p[~mask])
    if pos.size == 0 or neg.size == 0 or _is_constant(p):
        return 0.5
    thresholds = np.unique(pos)[::-1]
    tp = (pos.size - np.searchsorted(pos, thresholds, side="left")) / pos.size
    fp = (neg.size - np.searchsorted(neg, thresholds, side="left")) / neg.size
    return _trapezoid(np.r_[0.0, fp, 1.0], np.r_[0.0, tp, 1.0])


def sauc(pred: ArrayLike, fixations: ArrayLike, other_fixations: ArrayLike) -> float:
    """Shuffled AUC as the exact Mann-Whitney P(pos > neg) + 0.5 P(pos == neg).

    Positives are the saliency values at this image's fixated pixels,
    negatives those at the pixels fixated in ``other_fixations`` (pixels in
    both maps count on both sides).  This is the exact ROC area over all
    thresholds (pysaliency's ``general_roc(..., judd=0)``), i.e. the limit of
    the MIT ``AUC_shuffled.m`` procedure as its threshold step goes to 0 and
    its number of random splits grows.  With the MIT defaults (step 0.1 on
    the min-max normalised map, 100 splits) the MIT value can differ from
    this one by several hundredths, most for smooth maps.
    """
    p, f = _pair(pred, fixations, "fixations")
    _, o = _pair(p, other_fixations, "other_fixations")
    pos = p[_fixation_mask(f, "fixations")]
    neg = np.sort(p[_fixation_mask(o, "other_fixations")])
    if pos.size == 0 or neg.size == 0 or _is_constant(p):
        return 0.5
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    wins = 2 * int(below.sum()) + int(ties.sum())  # twice the Mann-Whitney U
    return wins / (2.0 * pos.size * neg.size)


def density(x: ArrayLike, uniform: float = IG_UNIFORM) -> np.ndarray:
    """A non-negative map as a density over its pixels (sum 1), mixed with
    ``uniform`` of the uniform density; a constant or all-zero map is uniform."""
    d = _distribution(_as_map(x, "map"), "map")
    return (1.0 - uniform) * d + uniform / d.size


def information_gain(pred: ArrayLike, points: ArrayLike, baseline: ArrayLike) -> float:
    """Information gain of ``pred`` over ``baseline``, in bits per fixation.

    Both maps become densities (`density`); the gain is the mean over the
    fixations (``points``: int (row, col), one row per fixation, repeats
    counted) of ``log2 p(x) - log2 b(x)``, the MIT/Tuebingen benchmark's
    definition (pysaliency's ``information_gain``). 0.0 without fixations.
    """
    p, b = _pair(pred, baseline, "baseline")
    points = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    if points.size == 0:
        return 0.0
    p, b = density(p), density(b)
    rows, cols = points[:, 0], points[:, 1]
    return float(np.mean(np.log2(p[rows, cols]) - np.log2(b[rows, cols])))


def center_bias(height: int, width: int, sigma: float) -> np.ndarray:
    """Gaussian centre bias with standard deviation ``sigma`` x each image side."""
    ys = (np.arange(height) + 0.5) / height - 0.5
    xs = (np.arange(width) + 0.5) / width - 0.5
    return np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma**2))


def score_image(
    pred: ArrayLike,
    gt_map: ArrayLike,
    fixations: ArrayLike,
    other_fixations: ArrayLike | None = None,
    metrics: Sequence[str] = METRICS,
    *,
    points: ArrayLike | None = None,
    baseline: ArrayLike | None = None,
) -> dict[str, float]:
    """Compute the requested metrics for one image.

    ``cc``/``sim``/``kld`` use ``gt_map``; ``nss``/``auc_judd``/``sauc`` use
    ``fixations``; ``ig`` the fixation ``points`` and the ``baseline`` map.
    ``sauc`` is omitted from the result when ``other_fixations`` is None, ``ig``
    when ``points`` or ``baseline`` is.  Unknown metric names raise ``ValueError``.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {METRICS}")
    kernels = {
        "cc": lambda: cc(pred, gt_map),
        "sim": lambda: sim(pred, gt_map),
        "kld": lambda: kld(pred, gt_map),
        "nss": lambda: nss(pred, fixations),
        "auc_judd": lambda: auc_judd(pred, fixations),
        "sauc": lambda: sauc(pred, fixations, other_fixations),
        "ig": lambda: information_gain(pred, points, baseline),
    }
    missing = {"sauc": other_fixations is None, "ig": points is None or baseline is None}
    return {m: kernels[m]() for m in metrics if not missing.get(m, False)}
