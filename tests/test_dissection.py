import numpy as np
import pytest
import torch

from saldissect.analysis import dissection
from saldissect.analysis.dissection import (
    COUNTING_PATH_ENV,
    COUNTING_PATHS,
    BasisHistogram,
    _counts_float,
    activation_contrast,
    calibrate_counting,
    counting_path,
    coverage_masks,
    intersection_union,
    iou,
)

CPU_PATHS = [
    pytest.param(
        path,
        marks=pytest.mark.skipif(
            path not in dissection._available_cpu_paths(), reason=f"no {path} path in this torch"
        ),
    )
    for path in COUNTING_PATHS
]


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


def loop_counts(prob, thresholds, masks):
    """Intersections and unions the obvious way: broadcast every basis mask
    against every concept mask and count cells."""
    basis = prob > thresholds.detach().view(1, -1, 1, 1)
    pairs = basis[:, :, None], masks[:, None]
    inter = (pairs[0] & pairs[1]).flatten(3).sum(3).float()
    return inter, (pairs[0] | pairs[1]).flatten(3).sum(3).float()


# grids of 1, 45, 64, 91 and 135 cells: one cell, and cell counts that are
# and are not multiples of 8 (bytes) and 64 (popcount words)
GRIDS = [(5, 9), (1, 1), (8, 8), (7, 13), (9, 15)]


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("grid", GRIDS)
def test_every_counting_path_gives_the_loops_counts_exactly(path, grid):
    gen = torch.Generator().manual_seed(3)
    prob = torch.rand(4, 19, *grid, generator=gen)
    thresholds = torch.rand(19, generator=gen).requires_grad_()  # e.g. learnt thresholds
    masks = torch.rand(4, 9, *grid, generator=gen) > 0.5  # K + 1 = 10: padded to 16 columns
    masks[:, 4] = False  # absent from every image
    masks[1] = False  # an image without any concept
    masks[2, 7] = True  # a concept covering its whole image
    masks[3, ::2] = False  # concepts absent from one image only
    with torch.no_grad():
        thresholds[5] = 1.0  # an empty basis mask
        thresholds[6] = -1.0  # a full one
    inter, union = intersection_union(prob, thresholds, masks, path=path)
    expected = loop_counts(prob, thresholds, masks)
    assert inter.dtype == union.dtype == torch.float32
    assert inter.shape == union.shape == (4, 19, 9)
    assert torch.equal(inter, expected[0]) and torch.equal(union, expected[1])
    # the GPU path (one batched float32 matmul), here on the CPU: the same counts
    batched = _counts_float(prob, thresholds.detach(), masks)
    assert torch.equal(batched[0], inter) and torch.equal(batched[1], union)


@pytest.mark.parametrize("path", CPU_PATHS)
def test_counting_paths_give_the_same_counts_in_parallel_threads(monkeypatch, path):
    """Three threads: four images side by side, or one image's bases
    thresholded in three uneven blocks."""
    monkeypatch.setattr(dissection, "_PARALLEL_CELLS", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    settings = []
    monkeypatch.setattr(torch, "set_num_threads", settings.append)
    assert dissection._parallel_work(19 * 91) == 3
    assert [b.stop - b.start for b in dissection._blocks(19, 3)] == [6, 6, 7]
    gen = torch.Generator().manual_seed(6)
    prob = torch.rand(4, 19, 7, 13, generator=gen)
    thresholds = torch.rand(19, generator=gen)
    masks = torch.rand(4, 8, 7, 13, generator=gen) > 0.6
    masks[0, 3] = False
    expected = loop_counts(prob, thresholds, masks)
    inter, union = intersection_union(prob, thresholds, masks, path=path)
    assert torch.equal(inter, expected[0]) and torch.equal(union, expected[1])
    one = intersection_union(prob[1:2], thresholds, masks[1:2], path=path)
    assert torch.equal(one[0], expected[0][1:2]) and torch.equal(one[1], expected[1][1:2])
    assert settings == [1, 3]  # images on one torch thread each, then restored


@pytest.mark.parametrize("seed", [0, 1])
def test_all_counting_paths_agree_exactly_on_a_larger_batch(seed):
    """A paper-like batch in miniature: 60 x 80 grid, concepts absent from some images."""
    gen = torch.Generator().manual_seed(seed)
    prob = torch.rand(3, 70, 60, 80, generator=gen)
    thresholds = torch.rand(70, generator=gen) * 0.4 + 0.5
    masks = torch.rand(3, 40, 60, 80, generator=gen) > 0.85
    masks &= torch.rand(3, 40, 1, 1, generator=gen) > 0.6  # each image holds some concepts
    results = {path: intersection_union(prob, thresholds, masks, path=path) for path in _paths()}
    expected = loop_counts(prob, thresholds, masks)
    for inter, union in results.values():
        assert torch.equal(inter, expected[0]) and torch.equal(union, expected[1])
    auto = iou(prob, thresholds, masks)
    for path in results:
        assert torch.equal(iou(prob, thresholds, masks, path=path), auto)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_counting_paths_threshold_other_dtypes_like_the_batched_path(path, dtype):
    gen = torch.Generator().manual_seed(4)
    prob = torch.rand(2, 11, 6, 7, generator=gen).to(dtype)
    thresholds = (torch.rand(11, generator=gen) * 0.5 + 0.25).to(dtype)
    masks = torch.rand(2, 5, 6, 7, generator=gen) > 0.5
    inter, union = intersection_union(prob, thresholds, masks, path=path)
    expected = _counts_float(prob, thresholds, masks)
    assert torch.equal(inter, expected[0]) and torch.equal(union, expected[1])


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("shape", [(0, 3, 0), (2, 0, 3), (2, 3, 0)])
def test_counting_paths_handle_empty_dimensions(path, shape):
    """No images, no bases, or no concepts: empty results of the right shape."""
    images, bases, concepts = shape
    prob = torch.rand(images, bases, 4, 5)
    masks = torch.ones(images, concepts, 4, 5, dtype=torch.bool)
    inter, union = intersection_union(prob, torch.rand(bases), masks, path=path)
    assert inter.shape == union.shape == shape


def _paths():
    return dissection._available_cpu_paths()


def test_calibration_chooses_a_valid_path(monkeypatch):
    monkeypatch.delenv(COUNTING_PATH_ENV, raising=False)
    times = calibrate_counting()
    # paths that fail or miscount on this CPU are left out; these two never do
    assert {"float", "popcount"} <= set(times) <= set(_paths())
    assert all(seconds > 0 for seconds in times.values())
    chosen = counting_path("cpu")
    # the fastest, or the first path in COUNTING_PATHS within 10% of it
    near = [p for p in COUNTING_PATHS if p in times and times[p] <= 1.1 * min(times.values())]
    assert chosen == near[0]
    assert counting_path("cpu") == chosen and calibrate_counting() == times  # cached
    monkeypatch.setenv(COUNTING_PATH_ENV, "auto")
    assert counting_path("cpu") == chosen


@pytest.mark.parametrize(
    ("times", "chosen"),
    [
        # an AVX2 CPU without VNNI: torch._int_mm is a plain loop there
        ({"int8": 24.7, "onednn": 0.90, "float": 2.19, "popcount": 0.97}, "onednn"),
        ({"int8": 24.7, "onednn": 1.50, "float": 2.19, "popcount": 0.97}, "popcount"),
        # AVX512-VNNI (the 2-core AMD EPYC this was measured on)
        ({"int8": 0.59, "onednn": 1.54, "float": 2.19, "popcount": 0.95}, "int8"),
        ({"float": 2.0, "popcount": 1.0}, "popcount"),  # a torch without oneDNN
    ],
)
def test_the_choice_takes_the_fastest_path_or_the_first_within_ten_percent(
    monkeypatch, times, chosen
):
    monkeypatch.delenv(COUNTING_PATH_ENV, raising=False)
    monkeypatch.setattr(dissection, "_calibration", lambda: tuple(times.items()))
    assert counting_path("cpu") == chosen


def test_calibration_leaves_out_paths_that_fail_or_miscount(monkeypatch, caplog):
    def miscount(prob, thresholds, masks):
        inter, union = dissection._CPU_COUNTS["float"](prob, thresholds, masks)
        return inter + 1, union

    def fail(prob, thresholds, masks):
        raise RuntimeError("no kernel for this CPU")

    monkeypatch.setitem(dissection._CPU_COUNTS, "popcount", miscount)
    if "int8" in _paths():
        monkeypatch.setitem(dissection._CPU_COUNTS, "int8", fail)
    dissection._calibration.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="saldissect.analysis.dissection"):
            times = calibrate_counting()
    finally:
        dissection._calibration.cache_clear()  # the next calibration measures the real paths
    assert "popcount" not in times and "int8" not in times and "float" in times
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "popcount counting path miscounts" in messages
    if "int8" in _paths():
        assert "int8 counting path fails" in messages


@pytest.mark.parametrize("path", CPU_PATHS)
def test_the_environment_forces_the_cpu_path(monkeypatch, path):
    calls = []
    for name, counts in dissection._CPU_COUNTS.items():
        monkeypatch.setitem(
            dissection._CPU_COUNTS,
            name,
            lambda *args, name=name, counts=counts: calls.append(name) or counts(*args),
        )
    monkeypatch.setenv(COUNTING_PATH_ENV, path.upper())
    assert counting_path() == path
    prob, masks = torch.rand(2, 3, 4, 4), torch.rand(2, 2, 4, 4) > 0.5
    iou(prob, torch.rand(3), masks)
    assert calls == [path]
    # the keyword wins over the environment
    other = "float" if path != "float" else "popcount"
    iou(prob, torch.rand(3), masks, path=other)
    assert calls == [path, other]


def test_counting_path_rejects_unknown_and_misplaced_paths(monkeypatch):
    prob, masks = torch.rand(1, 2, 3, 3), torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="counting path"):
        intersection_union(prob, torch.rand(2), masks, path="int4")
    monkeypatch.setenv(COUNTING_PATH_ENV, "fastest")
    with pytest.raises(ValueError, match="counting path"):
        counting_path("cpu")
    # GPUs keep float32 whatever the environment says (no GPU needed to ask)
    assert counting_path("cuda") == "float"
    with pytest.raises(ValueError, match="CPU only"):
        dissection._checked_path("popcount", torch.device("cuda"))


def test_the_choice_is_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(dissection, "_LOGGED_CHOICES", set())
    monkeypatch.setenv(COUNTING_PATH_ENV, "popcount")
    with caplog.at_level("INFO", logger="saldissect.analysis.dissection"):
        for _ in range(3):
            counting_path("cpu")
    records = [r for r in caplog.records if "dissection counts" in r.getMessage()]
    assert len(records) == 1
    assert "popcount path" in records[0].getMessage()
    assert COUNTING_PATH_ENV in records[0].getMessage()


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
    from saldissect.analysis.dissection import PoissonBootstrap

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
    w = boot.weights_of(torch.arange(10))
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

    from saldissect.analysis.dissection import PoissonBootstrap

    scores, inter, union, occurs = _batches(seed=1)
    boot = PoissonBootstrap(4, 10, 3, 4, score="mean_iou", seed=0)
    boot.update(torch.arange(10), torch.arange(4), scores, inter, union, occurs)
    vocabulary = pd.DataFrame({"concept": list("abcd"), "kind": "object"})
    table = boot.top_table(vocabulary, keep_top=2)
    assert list(table.columns) == ["replicate", "basis", "concept", "kind", "value"]
    # read out in blocks of replicates: the same table
    pd.testing.assert_frame_equal(table, boot.top_table(vocabulary, keep_top=2, chunk=3))
    assert PoissonBootstrap.state_bytes(200, 512, 2000, "mean_iou") == 4 * 200 * 2000 * 513
    values = boot.values()
    for (r, n), rows in table.groupby(["replicate", "basis"]):
        best = values[r, n].topk(2)
        kept = [(list("abcd")[int(i)], float(v)) for v, i in zip(*best, strict=True) if v > 0]
        assert list(rows["concept"]) == [c for c, _ in kept]
        assert list(rows["value"]) == pytest.approx([v for _, v in kept])
    assert (table["value"] > 0).all()
