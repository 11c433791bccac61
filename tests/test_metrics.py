"""Tests for saldissect.metrics: known answers, slow references, degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats

from saldissect import metrics as M
from saldissect.metrics import METRICS, auc_judd, cc, kld, nss, sauc, score_image, sim


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
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[:2] = 1.0
    b[2:] = 3.0
    assert sim(a, b) == 0.0


def test_kld_known_answers():
    g = rng()
    x, y = g.random((8, 9)), g.random((8, 9))
    assert kld(x, x) == pytest.approx(0.0, abs=1e-12)
    assert kld(x, 2.0 * x) == pytest.approx(0.0, abs=1e-12)
    assert kld(x, y) > 0.01
    assert kld(y, x) > 0.01


def test_nss_single_fixation_hand_computed():
    # 1 at the fixation, 0 elsewhere, N = 20 pixels: mean = 1/N,
    # std = sqrt(N-1)/N, so the standardised value at the fixation is sqrt(N-1).
    pred = np.zeros((4, 5))
    pred[1, 2] = 1.0
    fix = np.zeros((4, 5), dtype=int)
    fix[1, 2] = 1
    assert nss(pred, fix) == pytest.approx(math.sqrt(19), rel=1e-12)


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
            assert not math.isnan(cc(a, b))
            if a.min() >= 0 and b.min() >= 0:
                assert not math.isnan(sim(a, b)) and not math.isnan(kld(a, b))
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
        sim(-np.ones((2, 2)), np.ones((2, 2)))
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

    full = score_image(pred, gt, fix, other)
    assert tuple(full) == METRICS
    assert full["cc"] == cc(pred, gt) and full["kld"] == kld(pred, gt)
    assert full["auc_judd"] == auc_judd(pred, fix) and full["sauc"] == sauc(pred, fix, other)
    assert all(isinstance(v, float) for v in full.values())

    no_other = score_image(pred, gt, fix)
    assert "sauc" not in no_other and set(no_other) == set(METRICS) - {"sauc"}
    assert score_image(pred, gt, fix, other, metrics=("nss",)) == {"nss": nss(pred, fix)}
    with pytest.raises(ValueError, match="unknown"):
        score_image(pred, gt, fix, metrics=("auc_borji",))
