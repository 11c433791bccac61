"""Tests for saldissect.core.metrics: known answers, slow references, degenerate cases.

The ``mit_*`` functions below are plain-loop transcriptions of the MIT saliency
benchmark's MATLAB code (github.com/cvzoya/saliency, ``code_forMetrics/``
``CC.m``, ``similarity.m``, ``KLdiv.m``, ``NSS.m``, ``AUC_Judd.m``), written
independently of the vectorised kernels they check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats

from saldissect.core import metrics as M
from saldissect.core.metrics import METRICS, auc_judd, cc, kld, nss, sauc, score_image, sim


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_fixations(g: np.random.Generator, shape=(12, 15), p: float = 0.1) -> np.ndarray:
    fix = (g.random(shape) < p).astype(np.int64)
    fix[0, 0] = 1  # never empty
    fix[-1, -1] = 0  # never full
    return fix


# ---------------------------------------------------------------- slow references


def slow_auc_judd(pred: np.ndarray, fix: np.ndarray) -> float:
    """Explicit loop over thresholds, as in the MIT benchmark (without jitter)."""
    s, f = pred.ravel(), fix.ravel() > 0
    pos, neg = s[f], s[~f]
    tp, fp = [0.0], [0.0]
    for t in sorted(pos, reverse=True):
        tp.append(sum(1 for v in pos if v >= t) / len(pos))
        fp.append(sum(1 for v in neg if v >= t) / len(neg))
    tp.append(1.0)
    fp.append(1.0)
    return sum((fp[i + 1] - fp[i]) * (tp[i + 1] + tp[i]) / 2 for i in range(len(tp) - 1))


def slow_sauc(pred: np.ndarray, fix: np.ndarray, other: np.ndarray) -> float:
    pos, neg = pred[fix > 0], pred[other > 0]
    total = 0.0
    for a in pos:
        for b in neg:
            total += 1.0 if a > b else 0.5 if a == b else 0.0
    return total / (len(pos) * len(neg))


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _matlab_std(xs: list[float]) -> float:
    """MATLAB ``std``: sample standard deviation (normalised by N - 1)."""
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _pixels(a: np.ndarray) -> list[float]:
    """Column-major pixel list, as MATLAB's ``a(:)``."""
    return [float(v) for v in a.ravel(order="F")]


def mit_cc(map1: np.ndarray, map2: np.ndarray) -> float:
    """CC.m: z-score both maps (MATLAB std), then corr2."""
    a, b = _pixels(map1), _pixels(map2)
    ma, sa, mb, sb = _mean(a), _matlab_std(a), _mean(b), _matlab_std(b)
    za = [(x - ma) / sa for x in a]
    zb = [(x - mb) / sb for x in b]
    mza, mzb = _mean(za), _mean(zb)
    num = sum((x - mza) * (y - mzb) for x, y in zip(za, zb, strict=True))
    den = math.sqrt(sum((x - mza) ** 2 for x in za) * sum((y - mzb) ** 2 for y in zb))
    return num / den


def mit_sim(map1: np.ndarray, map2: np.ndarray) -> float:
    """similarity.m: min-max to [0, 1], then sum to 1, then sum of minima."""

    def normalise(xs: list[float]) -> list[float]:
        if not any(xs):  # "zero map will remain a zero map"
            return xs
        lo, hi = min(xs), max(xs)
        ys = [(x - lo) / (hi - lo) for x in xs]
        total = sum(ys)
        return [y / total for y in ys]

    a, b = normalise(_pixels(map1)), normalise(_pixels(map2))
    return sum(min(x, y) for x, y in zip(a, b, strict=True))


def mit_kld(saliency: np.ndarray, fixation: np.ndarray) -> float:
    """KLdiv.m: both maps to sum 1, sum fix * log(eps + fix / (sal + eps))."""
    eps = 2.0**-52  # MATLAB eps
    a, b = _pixels(saliency), _pixels(fixation)
    sa, sb = sum(a), sum(b)
    a = [x / sa for x in a] if any(a) else a
    b = [x / sb for x in b] if any(b) else b
    return sum(y * math.log(eps + y / (x + eps)) for x, y in zip(a, b, strict=True))


def port_sim(map1: np.ndarray, map2: np.ndarray) -> float:
    """pysaliency / reference-code SIM: each map to sum 1 (min-max first if negative)."""

    def normalise(xs: list[float]) -> list[float]:
        if min(xs) < 0:
            lo, hi = min(xs), max(xs)
            xs = [(x - lo) / (hi - lo) for x in xs]
        total = sum(xs)
        return [x / total for x in xs]

    a, b = normalise(_pixels(map1)), normalise(_pixels(map2))
    return sum(min(x, y) for x, y in zip(a, b, strict=True))


def port_nss(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """pysaliency / reference-code NSS: standardise with np.std (ddof=0)."""
    s, f = _pixels(saliency), _pixels(fixations)
    m = _mean(s)
    sd = math.sqrt(sum((x - m) ** 2 for x in s) / len(s))
    return _mean([(x - m) / sd for x, fx in zip(s, f, strict=True) if fx != 0])


def mit_nss(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """NSS.m: standardise with MATLAB's std (ddof=1), mean at logical(fixations)."""
    s, f = _pixels(saliency), _pixels(fixations)
    m, sd = _mean(s), _matlab_std(s)
    return _mean([(x - m) / sd for x, fx in zip(s, f, strict=True) if fx != 0])


def mit_auc_judd(saliency: np.ndarray, fixations: np.ndarray, jitter_seed: int) -> float:
    """AUC_Judd.m with its default jitter (rand / 1e7), the loop as written there."""
    jitter = np.random.default_rng(jitter_seed).random(saliency.shape) / 10000000
    s = _pixels(saliency + jitter)
    lo, hi = min(s), max(s)
    s = [(x - lo) / (hi - lo) for x in s]
    f = _pixels(fixations)
    sth = [x for x, fx in zip(s, f, strict=True) if fx > 0]
    n_fix, n_pix = len(sth), len(s)
    threshes = sorted(sth, reverse=True)
    tp, fp = [0.0], [0.0]
    for i, thresh in enumerate(threshes, start=1):
        above = sum(1 for x in s if x >= thresh)
        tp.append(i / n_fix)
        fp.append((above - i) / (n_pix - n_fix))
    tp.append(1.0)
    fp.append(1.0)
    return sum((fp[k + 1] - fp[k]) * (tp[k + 1] + tp[k]) / 2 for k in range(len(tp) - 1))


# ---------------------------------------------------------------- known answers


def test_cc_known_answers():
    x = rng().random((8, 9))
    assert cc(x, x) == pytest.approx(1.0, abs=1e-12)
    assert cc(x, -x) == pytest.approx(-1.0, abs=1e-12)
    assert cc(x, 3.5 * x + 2.0) == pytest.approx(1.0, abs=1e-12)
    assert cc(x, -0.2 * x + 7.0) == pytest.approx(-1.0, abs=1e-12)


def test_sim_known_answers():
    x = rng().random((8, 9))
    assert sim(x, x) == pytest.approx(1.0, abs=1e-12)
    assert sim(x, 4.0 * x) == pytest.approx(1.0, abs=1e-12)
    assert sim(x, x + 5.0) < 0.9  # an offset flattens the distribution
    assert sim(x - x.max(), 3.0 * (x - x.min())) == pytest.approx(1.0, abs=1e-12)  # min-max
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[:2] = 1.0
    b[2:] = 3.0
    assert sim(a, b) == 0.0
    assert sim(a - 7.0, b - 1.0) == 0.0  # negative maps are min-max normalised


def test_sim_hand_computed():
    # pred [1, 2, 3, 4] -> /10 = [.1, .2, .3, .4]
    # gt   [5, 5, 5, 6] -> /21 = [5/21, 5/21, 5/21, 6/21]
    # sum of minima = .1 + .2 + 5/21 + 6/21 (MIT's min-max step would give 1/2)
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    gt = np.array([[5.0, 5.0], [5.0, 6.0]])
    assert sim(pred, gt) == pytest.approx(0.3 + 11 / 21, abs=1e-15)
    assert mit_sim(pred, gt) == pytest.approx(0.5, abs=1e-15)
    # pred [0, 1, 1, 2] -> [0, .25, .25, .5]; gt [2, 0, 1, 1] -> [.5, 0, .25, .25]
    pred = np.array([[0.0, 1.0], [1.0, 2.0]])
    gt = np.array([[2.0, 0.0], [1.0, 1.0]])
    assert sim(pred, gt) == pytest.approx(0.5, abs=1e-15)


def test_cc_hand_computed():
    # x = [1, 2, 3, 4], y = [1, 3, 2, 4]: deviations [-1.5, -.5, .5, 1.5] and
    # [-1.5, .5, -.5, 1.5]; r = (2.25 - .25 - .25 + 2.25) / 5 = 0.8
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[1.0, 3.0], [2.0, 4.0]])
    assert cc(x, y) == pytest.approx(0.8, abs=1e-15)


def test_kld_known_answers():
    g = rng()
    x, y = g.random((8, 9)), g.random((8, 9))
    assert kld(x, x) == pytest.approx(0.0, abs=1e-12)
    assert kld(x, 2.0 * x) == pytest.approx(0.0, abs=1e-12)
    assert kld(x, y) > 0.01
    assert kld(y, x) > 0.01


def test_kld_hand_computed_direction():
    # kld(pred, gt) = KL(gt || pred): gt = [1/2, 1/2, 0, 0], pred uniform 1/4
    # -> 2 * 1/2 * log(2) = log 2 (zero-gt pixels contribute nothing).
    pred = np.ones((2, 2))
    gt = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert kld(pred, gt) == pytest.approx(math.log(2.0), abs=1e-12)
    # the other direction blows up to ~log(1/eps) on the pixels pred misses
    eps = 2.0**-52
    expected = 2 * 0.25 * math.log(0.5) + 2 * 0.25 * math.log(eps + 0.25 / eps)
    assert kld(gt, pred) == pytest.approx(expected, rel=1e-12)


def test_nss_single_fixation_hand_computed():
    # 1 at the fixation, 0 elsewhere, N = 20 pixels: mean = 1/N, sum of squared
    # deviations = (N-1)/N, so np.std (ddof=0) is sqrt(N-1)/N and the
    # standardised value at the fixation is (1 - 1/N) N / sqrt(N-1) = sqrt(N-1).
    # (With MATLAB's ddof=1 it would be (N-1)/sqrt(N).)
    pred = np.zeros((4, 5))
    pred[1, 2] = 1.0
    fix = np.zeros((4, 5), dtype=int)
    fix[1, 2] = 1
    assert nss(pred, fix) == pytest.approx(math.sqrt(19), rel=1e-12)
    # a non-fixated pixel of the same map: -(1/N) N / sqrt(N-1) = -1/sqrt(N-1)
    fix2 = np.zeros((4, 5), dtype=int)
    fix2[0, 0] = 1
    assert nss(pred, fix2) == pytest.approx(-1 / math.sqrt(19), rel=1e-12)


def test_auc_judd_hand_computed():
    # values 4 3 2 1 0 0, fixated at 4 and 2 (negatives 3 1 0 0): threshold 4
    # gives (fp 0, tp 1/2), threshold 2 gives (fp 1/4, tp 1).  Trapezoids:
    # (0,0)-(0,.5): 0; (0,.5)-(.25,1): .25 * .75 = .1875; (.25,1)-(1,1): .75.
    pred = np.array([[4.0, 3.0, 2.0], [1.0, 0.0, 0.0]])
    fix = np.array([[1, 0, 1], [0, 0, 0]])
    assert auc_judd(pred, fix) == pytest.approx(0.9375, abs=1e-15)
    assert mit_auc_judd(pred, fix, jitter_seed=0) == pytest.approx(0.9375, abs=1e-6)


def test_nss_counts_fixated_pixel_once():
    g = rng(1)
    pred, fix = g.random((6, 7)), random_fixations(g, (6, 7), 0.3)
    counts = fix * g.integers(1, 5, size=fix.shape)
    assert nss(pred, counts) == nss(pred, fix)
    assert auc_judd(pred, counts) == auc_judd(pred, fix)


def test_auc_judd_perfect_inverted_constant():
    g = rng(2)
    fix = random_fixations(g)
    n_pos = int(fix.sum())
    noise = g.random(fix.shape)
    perfect = noise + 10.0 * fix  # fixated pixels strictly highest
    inverted = noise - 10.0 * fix  # fixated pixels strictly lowest
    assert auc_judd(perfect, fix) == pytest.approx(1.0, abs=1e-12)
    assert auc_judd(inverted, fix) == pytest.approx(0.5 / n_pos, abs=1e-12)
    assert auc_judd(inverted, fix) < 0.1
    assert auc_judd(np.full(fix.shape, 3.0), fix) == 0.5


def test_sauc_identical_negatives_is_half():
    g = rng(3)
    pred, fix = g.random((10, 10)), random_fixations(g, (10, 10))
    assert sauc(pred, fix, fix) == 0.5
    # also with heavy ties
    assert sauc(np.round(pred, 1), fix, fix) == 0.5


def test_sauc_perfect_separation():
    pred = np.arange(16.0).reshape(4, 4)
    fix = (pred >= 12).astype(int)
    other = (pred < 4).astype(int)
    assert sauc(pred, fix, other) == 1.0
    assert sauc(pred, other, fix) == 0.0


# ---------------------------------------------------------------- slow references


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 1])  # 1 decimal -> many ties
def test_auc_judd_matches_slow_loop(seed: int, decimals: int | None):
    g = rng(seed)
    pred = g.random((9, 11))
    if decimals is not None:
        pred = np.round(pred, decimals)
    fix = random_fixations(g, (9, 11), 0.2)
    assert auc_judd(pred, fix) == pytest.approx(slow_auc_judd(pred, fix), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 1])
def test_sauc_matches_double_loop(seed: int, decimals: int | None):
    g = rng(seed)
    pred = g.random((9, 11))
    if decimals is not None:
        pred = np.round(pred, decimals)
    fix = random_fixations(g, (9, 11), 0.2)
    other = random_fixations(g, (9, 11), 0.3)
    assert sauc(pred, fix, other) == pytest.approx(slow_sauc(pred, fix, other), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_against_scipy_formulas(seed: int):
    g = rng(seed)
    pred, gt = g.random((10, 13)), g.random((10, 13)) ** 3
    fix = random_fixations(g, (10, 13), 0.15)
    p, q = pred / pred.sum(), gt / gt.sum()

    assert cc(pred, gt) == pytest.approx(
        scipy.stats.pearsonr(pred.ravel(), gt.ravel())[0], abs=1e-9
    )
    assert sim(pred, gt) == pytest.approx(np.minimum(p, q).sum(), abs=1e-9)
    assert kld(pred, gt) == pytest.approx(scipy.special.rel_entr(q, p).sum(), abs=1e-9)
    assert kld(pred, gt) == pytest.approx(scipy.stats.entropy(q.ravel(), p.ravel()), abs=1e-9)
    z = scipy.stats.zscore(pred, axis=None)
    assert nss(pred, fix) == pytest.approx(z[fix > 0].mean(), abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["uniform", "offset", "negative", "quantised", "sparse"])
def test_agrees_with_mit_benchmark_transcription(seed: int, kind: str):
    """CC, SIM, NSS (and KLD) to 1e-6 of the ports / MIT, AUC-Judd to 0.02 of MIT."""
    g = rng(100 + seed)
    shape = (24, 32)
    if kind == "uniform":
        pred, gt = g.random(shape), g.random(shape)
    elif kind == "offset":  # min well above 0: the min-max step of SIM matters
        pred, gt = 3.0 + g.random(shape), 0.5 + g.random(shape) ** 2
    elif kind == "negative":  # logits-like prediction
        pred, gt = g.standard_normal(shape), g.random(shape)
    elif kind == "quantised":  # 8-bit maps: many ties, AUC-Judd jitter matters
        pred = np.round(255 * g.random(shape) ** 2)
        gt = np.round(255 * g.random(shape))
    else:  # large zero regions, as thresholded model outputs
        pred, gt = g.random(shape), g.random(shape)
        pred[pred < 0.5] = 0.0
        gt[gt < 0.7] = 0.0
    # fixations drawn where the prediction is high, so AUC is informative
    weights = (pred - pred.min() + 0.05).ravel()
    idx = g.choice(pred.size, size=40, replace=False, p=weights / weights.sum())
    fix = np.zeros(pred.size, dtype=int)
    fix[idx] = g.integers(1, 3, size=idx.size)  # counts: a pixel counts once
    fix = fix.reshape(shape)

    assert cc(pred, gt) == pytest.approx(mit_cc(pred, gt), abs=1e-6)
    assert sim(pred, gt) == pytest.approx(port_sim(pred, gt), abs=1e-6)
    assert nss(pred, fix) == pytest.approx(port_nss(pred, fix), abs=1e-6)
    n = pred.size  # MATLAB's ddof=1 standard deviation: a known factor
    assert nss(pred, fix) * math.sqrt((n - 1) / n) == pytest.approx(mit_nss(pred, fix), abs=1e-6)
    if pred.min() == 0 and gt.min() == 0:  # no min-max step to differ by
        assert sim(pred, gt) == pytest.approx(mit_sim(pred, gt), abs=1e-6)
    if pred.min() >= 0:
        assert kld(pred, gt) == pytest.approx(mit_kld(pred, gt), abs=1e-6)
        assert kld(gt, pred) == pytest.approx(mit_kld(gt, pred), abs=1e-6)
    assert auc_judd(pred, fix) == pytest.approx(mit_auc_judd(pred, fix, seed), abs=0.02)


def test_nss_differs_from_matlab_by_known_factor():
    # MIT's NSS.m standardises with MATLAB's std (ddof=1)
    g = rng(9)
    pred, fix = g.random((10, 12)), random_fixations(g, (10, 12), 0.2)
    n = pred.size
    ddof1 = ((pred - pred.mean()) / pred.std(ddof=1))[fix > 0].mean()
    assert nss(pred, fix) == pytest.approx(ddof1 * math.sqrt(n / (n - 1)), rel=1e-12)


# ---------------------------------------------------------------- degenerate inputs


def test_degenerate_cases_documented_values():
    g = rng(4)
    x = g.random((5, 6))
    const = np.full((5, 6), 2.5)
    zeros = np.zeros((5, 6))
    no_fix = np.zeros((5, 6), dtype=int)
    all_fix = np.ones((5, 6), dtype=int)
    fix = random_fixations(g, (5, 6), 0.3)

    assert cc(const, x) == 0.0 and cc(x, const) == 0.0 and cc(const, const) == 0.0
    assert cc(zeros, x) == 0.0 and cc(x, zeros) == 0.0

    uniform = np.ones((5, 6))
    assert sim(zeros, x) == sim(uniform, x) and sim(x, zeros) == sim(x, uniform)
    assert sim(zeros, zeros) == pytest.approx(1.0, abs=1e-12)
    assert kld(zeros, x) == kld(uniform, x) and kld(x, zeros) == kld(x, uniform)
    assert kld(zeros, zeros) == pytest.approx(0.0, abs=1e-12)
    assert sim(const, zeros) == pytest.approx(1.0, abs=1e-12)

    assert nss(const, fix) == 0.0
    assert nss(x, no_fix) == 0.0

    assert auc_judd(x, no_fix) == 0.5
    assert auc_judd(x, all_fix) == 0.5
    assert auc_judd(const, fix) == 0.5
    assert sauc(x, no_fix, fix) == 0.5
    assert sauc(x, fix, no_fix) == 0.5
    assert sauc(const, fix, all_fix) == 0.5


def test_no_nan_on_degenerate_inputs():
    shape = (4, 4)
    maps = [np.zeros(shape), np.ones(shape), np.full(shape, -3.0), rng(5).random(shape)]
    fixes = [np.zeros(shape, int), np.ones(shape, int), random_fixations(rng(6), shape, 0.5)]
    for a in maps:
        for b in maps:
            assert not math.isnan(cc(a, b)) and not math.isnan(sim(a, b))
            if a.min() >= 0 and b.min() >= 0:
                assert not math.isnan(kld(a, b))
        for f in fixes:
            for o in fixes:
                values = [nss(a, f), auc_judd(a, f), sauc(a, f, o)]
                assert not any(math.isnan(v) for v in values)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ["cc", "sim", "kld", "nss", "auc_judd"])
def test_shape_mismatch_raises(name: str):
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 3\)"):
        getattr(M, name)(np.ones((3, 4)), np.ones((4, 3)))


def test_sauc_shape_mismatch_raises():
    with pytest.raises(ValueError, match="other_fixations"):
        sauc(np.ones((3, 4)), np.ones((3, 4)), np.ones((4, 3)))


@pytest.mark.parametrize("name", ["cc", "sim", "kld", "nss", "auc_judd"])
def test_nan_raises(name: str):
    bad = np.ones((3, 4))
    bad[1, 1] = np.nan
    fn = getattr(M, name)
    with pytest.raises(ValueError, match="pred contains NaN"):
        fn(bad, np.ones((3, 4)))
    with pytest.raises(ValueError, match="contains NaN"):
        fn(np.ones((3, 4)), bad)


def test_other_invalid_inputs_raise():
    with pytest.raises(ValueError, match="contains NaN"):
        sauc(np.ones((2, 2)), np.ones((2, 2)), np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="inf"):
        cc(np.full((2, 2), np.inf), np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        cc(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="non-negative"):
        kld(-np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        kld(np.ones((2, 2)), -np.ones((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        nss(np.ones((2, 2)), -np.ones((2, 2)))


def test_integer_and_float32_inputs_computed_in_float64():
    g = rng(7)
    x = g.integers(0, 255, size=(6, 7))
    fix = random_fixations(g, (6, 7), 0.3)
    xf = x.astype(np.float64)
    for fn in (cc, sim, kld):
        assert fn(x.astype(np.uint8), x) == fn(xf, xf)
        assert isinstance(fn(x, x), float)
    assert nss(x.astype(np.float32), fix.astype(bool)) == nss(xf, fix)


# ---------------------------------------------------------------- score_image


def test_score_image():
    g = rng(8)
    pred, gt = g.random((8, 8)), g.random((8, 8))
    fix, other = random_fixations(g, (8, 8)), random_fixations(g, (8, 8), 0.4)

    points, baseline = np.argwhere(fix > 0), g.random((8, 8))
    full = score_image(pred, gt, fix, other, points=points, baseline=baseline)
    assert tuple(full) == METRICS
    assert full["cc"] == cc(pred, gt) and full["kld"] == kld(pred, gt)
    assert full["auc_judd"] == auc_judd(pred, fix) and full["sauc"] == sauc(pred, fix, other)
    assert full["ig"] == M.information_gain(pred, points, baseline)
    assert all(isinstance(v, float) for v in full.values())

    no_other = score_image(pred, gt, fix)
    assert "sauc" not in no_other and set(no_other) == set(METRICS) - {"sauc", "ig"}
    assert score_image(pred, gt, fix, other, metrics=("nss",)) == {"nss": nss(pred, fix)}
    with pytest.raises(ValueError, match="unknown"):
        score_image(pred, gt, fix, metrics=("auc_borji",))


# ------------------------------------------------ information gain, averaging


def test_information_gain_by_hand():
    g = rng(11)
    pred, baseline = g.random((6, 7)), g.random((6, 7))
    points = np.array([[0, 0], [5, 6], [2, 3], [2, 3]])  # a pixel fixated twice counts twice
    p = 0.999 * pred / pred.sum() + 0.001 / 42
    b = 0.999 * baseline / baseline.sum() + 0.001 / 42
    expected = np.mean([math.log2(p[r, c] / b[r, c]) for r, c in points])
    assert M.information_gain(pred, points, baseline) == pytest.approx(expected, rel=1e-12)
    assert M.information_gain(baseline, points, baseline) == 0.0  # the baseline gains nothing
    assert M.information_gain(pred, np.zeros((0, 2)), baseline) == 0.0
    # a map that is zero at a fixation costs bounded bits (the uniform share)
    zero = pred.copy()
    zero[0, 0] = 0.0
    assert np.isfinite(M.information_gain(zero, points, baseline))


def test_a_density_that_generated_the_fixations_gains_over_the_centre_bias():
    """Sampled from the truth, the truth's gain over a broad centre bias is positive
    in every one of 8 draws of 100 (its expectation is the KL divergence, 1.9 bits here)."""
    truth = M.center_bias(30, 40, 0.1) * (1 + 4 * (np.arange(40) > 30))
    broad = M.center_bias(30, 40, 0.4)
    density = truth / truth.sum()
    for seed in range(8):
        cells = rng(seed).choice(density.size, size=100, p=density.ravel())
        points = np.stack(np.unravel_index(cells, density.shape), axis=1)
        assert M.information_gain(truth, points, broad) > 0.3
        assert M.information_gain(broad, points, truth) < -0.3


def pysaliency_world(g, sizes=((12, 15), (10, 14), (16, 9), (11, 11), (13, 17))):
    """Stimuli, predictions, baselines and fixations (distinct pixels, 2 to 10 an image)."""
    import pysaliency

    stimuli, preds, baselines, xs, ys, ns = [], [], [], [], [], []
    for n, (h, w) in enumerate(sizes):
        stimulus = np.zeros((h, w, 3), np.uint8)
        stimulus[0, 0, 0] = n  # the models below find their map by it
        stimuli.append(stimulus)
        preds.append(g.random((h, w)) ** 3)
        baselines.append(M.center_bias(h, w, 0.3))
        cells = g.choice(h * w, size=2 * (n + 1), replace=False)
        rows, cols = np.unravel_index(cells, (h, w))
        ys.append(rows + 0.5)
        xs.append(cols + 0.5)
        ns.append(np.full(len(cells), n))
    fixations = pysaliency.Fixations.create_without_history(
        np.concatenate(xs), np.concatenate(ys), np.concatenate(ns)
    )
    return pysaliency.Stimuli(stimuli), preds, baselines, fixations


def test_nss_and_information_gain_average_as_pysaliency_does():
    """Per image (the MIT benchmark's tables) and per fixation (pysaliency's default,
    the MIT/Tuebingen benchmark's), from the same per-image scores: NSS on distinct
    fixated pixels, where the two definitions of an image's NSS agree."""
    import pysaliency

    from saldissect.analysis.evaluation import mean

    stimuli, preds, baselines, fixations = pysaliency_world(rng(5))

    class Map(pysaliency.SaliencyMapModel):
        def _saliency_map(self, stimulus):
            return preds[int(stimulus[0, 0, 0])]

    class Density(pysaliency.Model):
        def __init__(self, maps):
            super().__init__(caching=False)
            self.maps = maps

        def _log_density(self, stimulus):
            return np.log(M.density(self.maps[int(stimulus[0, 0, 0])]))

    ours = {"nss": [], "ig": []}
    counts = np.bincount(fixations.n)
    for n, (pred, baseline) in enumerate(zip(preds, baselines, strict=True)):
        chosen = fixations.n == n
        points = np.stack([fixations.y_int[chosen], fixations.x_int[chosen]], axis=1)
        fixated = np.zeros(pred.shape)
        fixated[points[:, 0], points[:, 1]] = 1
        ours["nss"].append(nss(pred, fixated))
        ours["ig"].append(M.information_gain(pred, points, baseline))
    model, base = Density(preds), Density(baselines)
    for average in ("image", "fixation"):
        expected = {
            "nss": Map().NSS(stimuli, fixations, average=average),
            "ig": model.information_gain(stimuli, fixations, base, average=average),
        }
        for metric, values in ours.items():
            got = mean(np.array(values), counts, average)
            assert got == pytest.approx(expected[metric], rel=1e-9, abs=1e-12), (metric, average)
