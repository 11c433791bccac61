import numpy as np
import pytest
import torch

from saldissect.dissection import (
    BasisHistogram,
    _counts_float,
    _counts_int8,
    activation_contrast,
    coverage_masks,
    intersection_union,
    iou,
)


def slow_iou(prob, thresholds, masks):
    """The reference algorithm: a loop over images, bases and concepts."""
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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iou_matches_the_obvious_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    prob = torch.rand(3, 7, 6, 8, generator=gen)
    thresholds = torch.rand(7, generator=gen)
    masks = torch.rand(3, 5, 6, 8, generator=gen) > 0.6
    masks[:, 0] = False  # an empty concept mask
    masks[0, 1] = True  # a full one
    thresholds[2] = 1.0  # an empty basis mask
    fast = iou(prob, thresholds, masks)
    assert fast.shape == (3, 7, 5)
    assert torch.allclose(fast, slow_iou(prob, thresholds, masks), atol=1e-6)


def test_activation_contrast_matches_the_obvious_loop():
    """Mean of P[n] inside each concept minus its mean over the image; 0 for empty masks."""
    gen = torch.Generator().manual_seed(3)
    prob = torch.rand(2, 4, 5, 6, generator=gen)
    masks = torch.rand(2, 3, 5, 6, generator=gen) > 0.5
    masks[1, 2] = False
    fast = activation_contrast(prob, masks)
    slow = torch.zeros(2, 4, 3)
    for b in range(2):
        for n in range(4):
            for k in range(3):
                if masks[b, k].any():
                    slow[b, n, k] = prob[b, n][masks[b, k]].mean() - prob[b, n].mean()
    assert torch.allclose(fast, slow, atol=1e-6)
    # a basis that fires only on a concept covering half the image: +0.5 there
    prob = torch.zeros(1, 1, 2, 2)
    prob[0, 0, 0] = 1.0
    masks = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    masks[0, 0, 0] = True
    assert activation_contrast(prob, masks).item() == pytest.approx(0.5)


@pytest.mark.parametrize("counts", [_counts_int8, _counts_float])
@pytest.mark.parametrize("grid", [(5, 9), (1, 1)])
def test_both_count_kernels_give_the_loops_counts(counts, grid):
    gen = torch.Generator().manual_seed(3)
    prob = torch.rand(4, 19, *grid, generator=gen)
    thresholds = torch.rand(19, generator=gen).requires_grad_()  # e.g. learnt thresholds
    masks = torch.rand(4, 9, *grid, generator=gen) > 0.5  # K + 1 = 10: padded to 16 columns
    masks[:, 4] = False
    inter, union = counts(prob, thresholds, masks)
    basis = prob > thresholds.detach().view(1, -1, 1, 1)
    pairs = basis[:, :, None], masks[:, None]
    assert inter.dtype == union.dtype == torch.float32
    assert torch.equal(inter, (pairs[0] & pairs[1]).flatten(3).sum(3).float())
    assert torch.equal(union, (pairs[0] | pairs[1]).flatten(3).sum(3).float())


def test_iou_is_zero_when_union_empty_and_one_when_masks_equal():
    prob = torch.zeros(1, 2, 4, 4)
    prob[0, 1, :2] = 1.0
    masks = torch.zeros(1, 2, 4, 4, dtype=torch.bool)
    masks[0, 1, :2] = True
    result = iou(prob, torch.tensor([0.5, 0.5]), masks)
    assert result[0, 0, 0] == 0.0  # both empty
    assert result[0, 1, 1] == 1.0  # identical
    assert result[0, 1, 0] == 0.0  # empty concept vs non-empty basis


def test_iou_rejects_mismatched_grids():
    with pytest.raises(ValueError, match="grid"):
        intersection_union(
            torch.rand(1, 2, 4, 4), torch.rand(2), torch.zeros(1, 3, 4, 5, dtype=torch.bool)
        )


def test_coverage_masks_keep_cells_covered_enough():
    # a 40 x 40 image on a 4 x 4 grid: cells are 10 x 10 pixels
    box = np.array([[0, 0, 15, 10]])  # covers cell (0,0) fully and half of cell (0,1)
    strict = coverage_masks([box], (40, 40), (4, 4), min_cover=0.6)[0]
    loose = coverage_masks([box], (40, 40), (4, 4), min_cover=0.5)[0]
    assert strict.sum() == 1 and strict[0, 0]
    assert loose.sum() == 2 and loose[0, 1]
    # the union of two boxes counts once: two halves of one cell make it whole
    halves = np.array([[10, 10, 5, 10], [15, 10, 5, 10]])
    assert coverage_masks([halves], (40, 40), (4, 4), min_cover=1.0)[0][1, 1]


def test_streaming_quantile_matches_exact_quantile():
    gen = torch.Generator().manual_seed(0)
    batches = [
        torch.rand(8, 3, 50, 50, generator=gen) ** (1 + torch.arange(3).view(1, 3, 1, 1))
        for _ in range(5)
    ]
    hist = BasisHistogram(3, bins=100000)
    for batch in batches:
        hist.update(batch)
    threshold, active = hist.quantile(0.8)
    values = torch.cat([b.transpose(0, 1).reshape(3, -1) for b in batches], dim=1)
    exact = torch.quantile(values.double(), 0.8, dim=1)
    assert torch.allclose(threshold, exact, atol=1e-4)
    measured = (values > threshold[:, None].float()).float().mean(1).double()
    assert torch.allclose(active, measured, atol=0.01)


# ------------------------------------------------------------------ bootstrap
def _batches(seed=0, n_images=10, n_bases=3, n_concepts=4):
    """Per-image IoUs, intersections and unions, zero where a concept is absent."""
    g = torch.Generator().manual_seed(seed)
    occurs = torch.rand(n_images, n_concepts, generator=g) > 0.4
    inter = torch.randint(0, 5, (n_images, n_bases, n_concepts), generator=g).float()
    union = inter + torch.randint(1, 5, (n_images, n_bases, n_concepts), generator=g).float()
    mask = occurs[:, None, :]
    return (inter / union) * mask, inter * mask, union * mask, occurs


@pytest.mark.parametrize("score", ["mean_iou", "pooled_iou"])
def test_poisson_bootstrap_replicates_are_weighted_sums_whatever_the_batches(score):
    from saldissect.dissection import PoissonBootstrap

    scores, inter, union, occurs = _batches()
    results = []
    for splits in ([10], [3, 3, 4]):
        boot = PoissonBootstrap(7, 10, 3, 4, score=score, seed=5)
        start = 0
        for size in splits:
            rows = torch.arange(start, start + size)
            boot.update(rows, torch.arange(4), scores[rows], inter[rows], union[rows], occurs[rows])
            start += size
        results.append(boot.values())
    torch.testing.assert_close(results[0], results[1])
    # Replicate r is the score with image i counted W[r, i] times (the obvious loop).
    w = boot.weights
    assert w.shape == (7, 10) and torch.equal(w, w.round()) and (w >= 0).all()
    for r in range(7):
        for n in range(3):
            for k in range(4):
                if score == "mean_iou":
                    num = sum(w[r, i] * scores[i, n, k] for i in range(10))
                    den = sum(w[r, i] * occurs[i, k] for i in range(10))
                else:
                    num = sum(w[r, i] * inter[i, n, k] for i in range(10))
                    den = sum(w[r, i] * union[i, n, k] for i in range(10))
                expected = num / den if den > 0 else 0.0
                assert results[0][r, n, k].item() == pytest.approx(float(expected), abs=1e-6)


def test_poisson_bootstrap_keeps_each_bases_top_concepts_per_replicate():
    import pandas as pd

    from saldissect.dissection import PoissonBootstrap

    scores, inter, union, occurs = _batches(seed=1)
    boot = PoissonBootstrap(4, 10, 3, 4, score="mean_iou", seed=0)
    boot.update(torch.arange(10), torch.arange(4), scores, inter, union, occurs)
    vocabulary = pd.DataFrame({"concept": list("abcd"), "kind": "object"})
    table = boot.top_table(vocabulary, keep_top=2)
    assert list(table.columns) == ["replicate", "basis", "concept", "kind", "value"]
    values = boot.values()
    for (r, n), rows in table.groupby(["replicate", "basis"]):
        best = values[r, n].topk(2)
        kept = [(list("abcd")[int(i)], float(v)) for v, i in zip(*best, strict=True) if v > 0]
        assert list(rows["concept"]) == [c for c, _ in kept]
        assert list(rows["value"]) == pytest.approx([v for _, v in kept])
    assert (table["value"] > 0).all()
