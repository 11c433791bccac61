"""The contrast and regression readouts (docs/method.md 5): the regression separates
an attribute from the object it sits on, and both readouts' bootstrap intervals
cover what they estimate, over several seeds."""

import numpy as np
import pytest
import torch

from saldissect.analysis.dissection import PoissonBootstrap, poisson_weights
from saldissect.analysis.readouts import readout_statistics, solve

#: Four objects, then two attributes that only ever sit on an object (the same cells),
#: and only on the first and third, both salient (a world's coloured objects).
WEIGHTS = np.array([1.0, -0.5, 0.8, -1.0, 0.4, -0.6])
OBJECTS, ATTRIBUTES, COLOURED = range(4), (4, 5), (0, 2)
GRID = 8


def scenes(seed, n_images=240, noise=0.3, batch=32):
    """Batches of logits y = intercept + sum_c w[c] mask_c + noise, on masks where
    every attribute shares its object's cells (as boxes of Visual Genome do)."""
    rng = np.random.default_rng(seed)
    items = []
    for image in range(n_images):
        masks = np.zeros((len(WEIGHTS), GRID * GRID), np.float32)
        for obj in rng.choice(OBJECTS, size=int(rng.integers(1, 4)), replace=False):
            cells = np.zeros((GRID, GRID), bool)
            x, y = rng.integers(0, GRID - 2, size=2)
            w, h = rng.integers(2, 5, size=2)
            cells[y : y + h, x : x + w] = True
            masks[obj] = np.maximum(masks[obj], cells.ravel())
            if obj in COLOURED and rng.random() < 0.7:
                attribute = ATTRIBUTES[int(rng.integers(2))]
                masks[attribute] = np.maximum(masks[attribute], cells.ravel())
        logit = rng.normal() + WEIGHTS @ masks + noise * rng.normal(size=GRID * GRID)
        items.append((image, logit.astype(np.float32), masks))
    batches = []
    for start in range(0, n_images, batch):
        chunk = items[start : start + batch]
        present = np.flatnonzero(np.any([m.any(1) for _, _, m in chunk], axis=0))
        batches.append(
            (
                torch.as_tensor(np.stack([y for _, y, _ in chunk])),
                torch.as_tensor(np.stack([m[present] for _, _, m in chunk])),
                torch.as_tensor(present),
                torch.as_tensor([i for i, _, _ in chunk]),
            )
        )
    return lambda description: iter(batches)


@pytest.mark.parametrize("seed", range(6))
def test_the_regression_separates_an_attribute_from_its_object(seed):
    """The regression gets every weight to 0.1; the contrast credits the negative
    attribute with its salient objects and signs it wrong (what untuned worlds showed)."""
    out = readout_statistics(scenes(seed), len(WEIGHTS), ridge=1e-6)
    assert np.abs(out["regression"] - WEIGHTS).max() < 0.1, out["regression"]
    assert out["contrast"][5] > 0 > WEIGHTS[5], out["contrast"]


def test_bootstrap_intervals_cover_the_truth_over_seeds():
    """95% intervals: over 8 worlds x 6 concepts, the regression's cover the planted
    weight at least 85% of the time; the contrast's cover its own full-data value."""
    covered, contrast_covered, total = 0, 0, 0
    for seed in range(8):
        out = readout_statistics(scenes(100 + seed), len(WEIGHTS), bootstrap=200, seed=seed)
        covered += int(
            ((out["regression_low"] <= WEIGHTS) & (WEIGHTS <= out["regression_high"])).sum()
        )
        inside = (out["contrast_low"] <= out["contrast"]) & (
            out["contrast"] <= out["contrast_high"]
        )
        contrast_covered += int(inside.sum())
        total += len(WEIGHTS)
    assert covered >= 0.85 * total, (covered, total)
    assert contrast_covered == total


def test_intervals_narrow_with_more_images_and_are_nan_without_bootstrap():
    small = readout_statistics(scenes(7, n_images=80), len(WEIGHTS), bootstrap=100)
    large = readout_statistics(scenes(7, n_images=640), len(WEIGHTS), bootstrap=100)

    def width(out, name):
        return np.median(out[f"{name}_high"] - out[f"{name}_low"])

    for name in ("contrast", "regression"):
        assert width(large, name) < 0.6 * width(small, name)
    plain = readout_statistics(scenes(7, n_images=80), len(WEIGHTS))
    assert np.isnan(plain["regression_low"]).all() and np.isnan(plain["contrast_high"]).all()
    assert np.allclose(plain["regression"], small["regression"])


def test_replicates_resample_the_same_images_as_the_dissection():
    rows = torch.tensor([3, 0, 17])
    assert torch.equal(
        poisson_weights(5, rows, 40).float(),
        PoissonBootstrap(40, 20, 1, 1, score="mean_iou", seed=5).weights_of(rows),
    )
    assert torch.equal(poisson_weights(5, rows[1:], 40), poisson_weights(5, rows, 40)[:, 1:])


def test_a_concept_without_cells_gets_zero_and_the_rest_still_solve():
    gram = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    moment = torch.tensor([2.0, -1.0, 0.0], dtype=torch.float64)
    coef, inverse = solve(gram, moment, ridge=0.0)
    assert coef[2] == 0 and torch.all(inverse[2] == 0)
    assert torch.allclose(gram[:2, :2] @ coef[:2], moment[:2])
