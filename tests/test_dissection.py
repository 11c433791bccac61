import numpy as np
import pytest
import torch

from saldissect.dissection import BasisHistogram, coverage_masks, intersection_union, iou


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
