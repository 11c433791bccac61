"""Interactions (docs/method.md 6): attention, chunked statistics, I and S, the planted pair."""

import numpy as np
import pandas as pd
import pytest
import torch
from worlds import world

from saldissect.analysis.contributions import heatmap_concepts
from saldissect.data import synthetic
from saldissect.interaction import interactions as inter
from saldissect.recovery.recovery import pair_rank


def random_head(n=6, dim=8, seed=0):
    torch.manual_seed(seed)
    return inter.InteractionHead(n, dim=dim)


# ------------------------------------------------------------------- attention
def test_attention_rows_sum_to_one():
    head = random_head()
    prob = torch.rand(3, 6, 4, 5)
    a = inter.attention(head, prob)
    assert a.shape == (3, 20, 20)
    assert (a >= 0).all()
    assert torch.allclose(a.sum(-1), torch.ones(3, 20), atol=1e-6)


def test_fused_attention_equals_the_explicit_product():
    head = random_head()
    prob = torch.rand(2, 6, 3, 4)
    explicit = inter.attention(head, prob) @ prob.flatten(2).transpose(1, 2)  # A P^T
    fused = head.attend(prob)
    assert torch.allclose(fused, explicit.transpose(1, 2).reshape(prob.shape), atol=1e-6)
    assert head(prob, (6, 8)).shape == (2, 1, 6, 8)


def test_only_queries_keys_and_readout_exist():
    head = random_head()
    assert {name.split(".")[0] for name, _ in head.named_parameters()} == {
        "query",
        "key",
        "readout",
    }
    assert head.readout.bias is None and head.readout.kernel_size == (1, 1)


def logits(head, prob):
    return torch.logit(head(prob, tuple(prob.shape[-2:])).clamp(1e-7, 1 - 1e-7))


def test_the_attended_readout_never_lifts_a_cell_above_every_cell_it_reads():
    """conv1x1(A P^T) is a convex mixture of the cells' own conv1x1(P): the reason
    for readout split, whose second readout of the cell's own maps lifts it."""
    for seed in range(8):
        head = random_head(seed=seed)
        prob = torch.rand(2, 6, 4, 5)
        with torch.no_grad():
            own = head.readout(prob).flatten(1)  # each cell's logit read alone
            mixed = logits(head, prob).flatten(1)
        assert (mixed <= own.max(1, keepdim=True).values + 1e-4).all()
        assert (mixed >= own.min(1, keepdim=True).values - 1e-4).all()
    split = inter.InteractionHead(6, dim=8, readout="split")
    with torch.no_grad():
        split.readout.weight.copy_(head.readout.weight)
        split.query.load_state_dict(head.query.state_dict())
        split.key.load_state_dict(head.key.state_dict())
        split.own.weight.fill_(1.0)
        lifted = logits(split, prob).flatten(1)
    assert torch.allclose(lifted, mixed + prob.sum(1).flatten(1), atol=1e-3)
    assert (lifted > own.max(1, keepdim=True).values).any()


def test_a_split_head_is_loaded_back_as_split(tmp_path):
    from saldissect.core.io import save_checkpoint

    head = inter.InteractionHead(6, dim=8, readout="split")
    meta = {"head": "interaction", "dim": 8, "readout": "split"}
    save_checkpoint({"model": head.state_dict(), "meta": meta}, tmp_path / "model.pt")
    loaded = inter.load_head(tmp_path / "model.pt", 6, 8, "cpu")
    assert loaded.kind == "split" and torch.equal(loaded.own.weight, head.own.weight)
    with pytest.raises(ValueError, match="readout 'mean'"):
        inter.InteractionHead(6, readout="mean")


@pytest.mark.parametrize("budget", [1e-5, 0.002, 256.0])  # 1 row, a few rows, all rows
def test_blocked_statistics_match_the_whole_attention(budget):
    head = random_head()
    prob, tau, s = torch.rand(3, 6, 4, 5), torch.full((6,), 0.6), torch.rand(3, 4, 5)
    spread, flows = inter.attention_statistics(head, prob, tau, s, attention_mb=budget)
    a = inter.attention(head, prob)
    binary = (prob > 0.6).flatten(2).transpose(1, 2).float()
    assert torch.allclose(spread.flatten(1), torch.einsum("bi,bij->bj", s.flatten(1), a), atol=1e-5)
    assert torch.allclose(flows, binary.transpose(1, 2) @ a @ binary, atol=1e-5)
    # mass is conserved: what the salient cells send is what the map holds
    assert torch.allclose(spread.sum((1, 2)), s.sum((1, 2)), atol=1e-4)


def test_chunk_rows_fit_the_budget():
    rows = inter.chunk_rows(batch=8, cells=4800, attention_mb=256)
    assert rows * 8 * 4800 * 4 <= 256 * 2**20 < (rows + 1) * 8 * 4800 * 4
    assert inter.chunk_rows(64, 4800, 1) == 1 and inter.chunk_rows(1, 10, 1000) == 10


# ------------------------------------------------------- known-answer matrices
def cyclic_head(strength=30.0):
    """Cells of basis n attend (almost) only to cells of basis n + 1 mod 3."""
    head = inter.InteractionHead(3, dim=3)
    with torch.no_grad():
        head.query.weight.copy_(strength**0.5 * torch.eye(3))
        head.key.weight.copy_(strength**0.5 * torch.eye(3)[[1, 2, 0]])  # k_j[n] = P_j[n + 1]
        head.query.bias.zero_()
        head.key.bias.zero_()
    return head


def one_hot_maps(layout):
    """1 x N x 1 x len(layout) maps, 0.9 on each cell's basis and 0.05 elsewhere."""
    prob = torch.full((1, 3, 1, len(layout)), 0.05)
    for cell, basis in enumerate(layout):
        prob[0, basis, 0, cell] = 0.9
    return prob


def test_basis_interactions_on_a_hand_made_case():
    head = cyclic_head()
    tau = torch.full((3,), 0.5)
    images = [one_hot_maps([0, 0, 1, 2]), one_hot_maps([0, 1, 1, 2, 2, 2])]
    flows = []
    for prob in images:
        _, f = inter.attention_statistics(head, prob, tau, torch.ones(1, 1, prob.shape[-1]))
        flows.append(f[0])
    # image 1: the two basis-0 cells send all their mass to the single basis-1 cell, ...
    assert torch.allclose(flows[0], torch.tensor([[0, 2.0, 0], [0, 0, 1], [1, 0, 0]]), atol=1e-3)
    result = inter.basis_interactions(torch.stack(flows))
    # after per-image row normalisation, summing and scaling by row max: the cycle
    assert torch.allclose(result, torch.tensor([[0, 1.0, 0], [0, 0, 1], [1, 0, 0]]), atol=1e-3)


def test_row_normalisation_keeps_absent_bases_at_zero():
    flows = torch.tensor([[[2.0, 2.0], [0.0, 0.0]], [[1.0, 3.0], [0.0, 4.0]]])
    assert torch.equal(inter.normalise_rows(flows)[0, 1], torch.zeros(2))
    # row 0: (0.5 + 0.25, 0.5 + 0.75) / 1.25; row 1 only from image 2
    expected = torch.tensor([[0.6, 1.0], [0.0, 1.0]])
    assert torch.allclose(inter.basis_interactions(flows), expected)


def test_semantic_interactions_on_a_hand_made_case():
    interactions = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    beta = pd.DataFrame(
        {
            "basis": [0, 1, 1, 2],
            "concept": ["giraffe", "face", "red", "sky"],
            "beta": [1.0, 0.5, 0.5, 1.0],
        }
    )
    table = inter.semantic_interactions(interactions, beta, ["face", "giraffe", "red", "sky", "x"])
    s = table.pivot(index="source", columns="target", values="weight")
    assert s.loc["giraffe", "face"] == pytest.approx(0.5)  # basis 0 -> 1, half face
    assert s.loc["giraffe", "red"] == pytest.approx(0.5)
    assert s.loc["face", "sky"] == pytest.approx(0.5) and s.loc["sky", "giraffe"] == 1.0
    assert s.loc["x"].abs().sum() == 0 and s["x"].abs().sum() == 0  # credited by no basis
    assert len(table) == 25 and list(table.columns) == ["source", "target", "weight"]


def test_semantic_interactions_match_the_double_sum():
    rng = np.random.default_rng(0)
    n, concepts = 7, ["a", "b", "c", "d"]
    interactions = rng.random((n, n))
    beta = pd.DataFrame(
        [(b, c, rng.random()) for b in range(n) for c in concepts if rng.random() < 0.6],
        columns=["basis", "concept", "beta"],
    )
    fast = inter.semantic_interactions(interactions, beta, concepts).set_index(
        ["source", "target"]
    )["weight"]
    weight = {(r.basis, r.concept): r.beta for r in beta.itertuples()}
    for c1 in concepts:
        for c2 in concepts:
            slow = sum(
                interactions[i, j] * weight.get((i, c1), 0.0) * weight.get((j, c2), 0.0)
                for i in range(n)
                for j in range(n)
            )
            assert fast[(c1, c2)] == pytest.approx(slow)


def test_pair_rank_and_heatmap_concepts():
    table = pd.DataFrame(
        {
            "source": ["a", "a", "a", "b"],
            "target": ["a", "b", "c", "a"],
            "weight": [3.0, 1.0, 2.0, 1.0],
        }
    )
    assert pair_rank(table, "a", "c") == (2.0, 3)
    assert pair_rank(table, "a", "b") == (3.0, 3)
    assert np.isnan(pair_rank(table, "z", "a")[0])
    zeros = table.assign(weight=0.0)  # a source no basis credits: the pair ranks last
    assert pair_rank(zeros, "a", "a") == (3.0, 3)
    contributions = pd.DataFrame(
        {"concept": ["p1", "p2", "n1", "n2", "z"], "rank": [1, 2, -1, -2, 0]}
    )
    assert heatmap_concepts(contributions, 20) == ["p1", "p2", "n1", "n2"]
    assert heatmap_concepts(contributions, 1) == ["p1", "n1"]


# ------------------------------------------------------------ planted interaction
WORLD = world(height=48, width=64, objects_per_image=[2, 4])
WEIGHTS = {"face": 1.0, "giraffe": 0.0, "zebra": 0.0, "ball": -0.5, "sky": -0.3, "field": 0.3}
PAIR = {"source": "giraffe", "target": "face", "weight": 1.5, "radius": 0.5}


def test_plant_interaction_touches_only_near_sources():
    value = np.zeros((20, 40), np.float32)
    owner = np.full((20, 40), -1, np.int32)
    boxes = [(0, 0, 10, 10), (8, 0, 10, 10), (30, 10, 10, 10), (28, 0, 4, 4)]
    for index, (x, y, w, h) in enumerate(boxes):
        owner[y : y + h, x : x + w] = index
    names = ["giraffe", "face", "giraffe", "zebra"]
    pair = {"source": "giraffe", "target": "face", "weight": 2.0, "radius": 0.3}
    synthetic.plant_interaction(value, owner, boxes, names, pair)
    assert (value[owner == 0] == 2.0).all()  # face centre 8 px away, within 0.3 x 44.7
    assert (value[owner == 2] == 0).all()  # 25 px away: too far
    assert (value[(owner == 1) | (owner == 3) | (owner == -1)] == 0).all()


def test_a_world_without_interaction_is_unchanged():
    for i in range(5):
        plain = synthetic.draw_scene(synthetic._rng(0, "train", i), WEIGHTS, WORLD)
        none = synthetic.draw_scene(
            synthetic._rng(0, "train", i), WEIGHTS, {**WORLD, "interaction": {"source": ""}}
        )
        planted = synthetic.draw_scene(
            synthetic._rng(0, "train", i), WEIGHTS, {**WORLD, "interaction": PAIR}
        )
        assert np.array_equal(plain.value, none.value)
        assert np.array_equal(plain.image, planted.image)
        assert set(np.unique(planted.value - plain.value)) <= {0.0, 1.5}


def test_interaction_names_planted_objects():
    with pytest.raises(ValueError, match="synthetic.interaction.target: 'clock'"):
        synthetic.validate_interaction({"source": "giraffe", "target": "clock"}, WEIGHTS)
    synthetic.validate_interaction({"source": ""}, WEIGHTS)


# ----------------------------------------------------------------- pair effects
CONCEPTS = ["face", "word", "bus", "ball", "sky", "field"]


def pair_world(seed, effect, n_images=300, cells=48, noise=0.4, batch=50, own=0.0, apart=True):
    """Per image a few concepts on random cells, the phase-two logit and the
    interaction variant's: the same plus noise, plus ``effect`` on word's cells
    when a face is in the image (the planted pair word <- face; 0: none), plus
    ``own`` on face's own cells (the variant attends to faces more or less than
    phase two: no pair). ``apart=False`` reads the pairs without `log_density_rest`."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 1, len(CONCEPTS))
    word, face = CONCEPTS.index("word"), CONCEPTS.index("face")
    effects = inter.PairEffects(len(CONCEPTS))
    for _ in range(0, n_images, batch):
        masks = np.zeros((batch, len(CONCEPTS), cells), np.float32)
        for image in range(batch):
            chosen = rng.choice(len(CONCEPTS), size=int(rng.integers(2, 5)), replace=False)
            spots = rng.permutation(cells)  # objects on cells of their own
            for k, concept in enumerate(chosen):
                masks[image, concept, spots[8 * k : 8 * k + 8]] = 1.0
        plain = np.einsum("c,bcj->bj", weights, masks) + rng.normal(0, 0.3, (batch, cells))
        attended = plain + rng.normal(0, noise, (batch, cells))
        has_face = masks[:, face].any(1)
        attended += effect * masks[:, word] * has_face[:, None] + own * masks[:, face]
        masks, plain, attended = map(torch.as_tensor, (masks, plain, attended))
        a, _ = inter.log_density_contrast(attended, masks)
        p, _ = inter.log_density_contrast(plain, masks)
        rest = inter.log_density_rest(attended, masks) - inter.log_density_rest(plain, masks)
        effects.update(a - p, torch.arange(len(CONCEPTS)), masks, rest if apart else None)
    return effects.table(CONCEPTS, min_images=5)


def test_the_pair_effect_finds_a_planted_pair_over_seeds():
    """Over 8 worlds the planted pair ranks first in its source's row and has the
    largest z of all pairs in at least 7."""
    first = largest = 0
    for seed in range(8):
        table = pair_world(seed, effect=0.6)
        rank, size = pair_rank(table, "word", "face", "pair_z")
        first += rank == 1
        top = table.loc[table["pair_z"].idxmax()]
        largest += (top["source"], top["target"]) == ("word", "face")
        assert size == len(CONCEPTS) - 1  # source = target has no value
    assert first >= 7 and largest >= 7, (first, largest)


def test_no_planted_pair_no_pair_stands_out_over_seeds():
    """With no pair planted the pair z is a null: over 8 worlds of 30 pairs the
    largest |z| stays under 3.5 in at least 7 (a N(0, 1) maximum of 30 is about 2.4)."""
    quiet = 0
    for seed in range(8):
        table = pair_world(seed, effect=0.0)
        quiet += table["pair_z"].abs().max() < 3.5
    assert quiet >= 7, quiet


def test_a_target_the_variant_attends_to_more_or_less_is_no_pair_over_seeds():
    """A variant that gives faces less density than phase two (-1 on their logit) and
    plants no pair: every other concept's share rises in images with a face. Taken
    against the cells outside the face, no pair stands out in at least 7 of 8 worlds;
    against the whole image, most rows would peak at face."""
    quiet = peaked = 0
    for seed in range(8):
        table = pair_world(seed, effect=0.0, own=-1.0)
        quiet += table["pair_z"].abs().max() < 3.5
        naive = pair_world(seed, effect=0.0, own=-1.0, apart=False)
        sources = [c for c in CONCEPTS if c != "face"]
        peaked += sum(pair_rank(naive, c, "face", "pair_z")[0] == 1 for c in sources) >= 3
    assert quiet >= 7, quiet
    assert peaked >= 7, peaked  # the reading it replaces


def test_a_planted_pair_is_found_beside_a_target_attended_less_over_seeds():
    first = 0
    for seed in range(8):
        table = pair_world(seed, effect=0.6, own=-1.0)
        first += pair_rank(table, "word", "face", "pair_z")[0] == 1
    assert first >= 7, first


def test_log_density_rest_sets_the_targets_cells_aside_but_not_the_sources():
    logit = torch.randn(3, 10)
    masks = torch.zeros(3, 3, 10)
    masks[:, 0, :4] = 1.0  # the source on cells 0-3
    masks[:, 1, 2:7] = 1.0  # the target on cells 2-6, two of them the source's
    density = torch.sigmoid(logit.double())
    density = density / density.sum(-1, keepdim=True)
    kept = torch.tensor([0, 1, 2, 3, 7, 8, 9])  # outside the target, or the source's
    expected = torch.log(density[:, kept].mean(-1) / density.mean(-1))
    rest = inter.log_density_rest(logit, masks)
    assert torch.allclose(rest[:, 0, 1], expected)
    assert (rest[:, :, 2] == 0).all() and (rest[:, 2, :] == 0).all()  # concept 2 absent


def test_a_target_on_the_source_only_is_in_neither_side():
    """An attribute on the object that carries it is the object's make-up, not a pair:
    images where the target lies only on the source's cells are left out, images
    where it lies elsewhere count as "with", so a difference that depends on the
    make-up alone gives no pair effect."""
    rng = np.random.default_rng(0)
    effects = inter.PairEffects(2)  # 0: bus, 1: red
    n = 90
    masks = torch.zeros(n, 2, 6)
    masks[:, 0, :3] = 1.0  # a bus in every image
    painted, elsewhere = np.arange(n) < 30, (np.arange(n) >= 30) & (np.arange(n) < 60)
    masks[painted, 1, :3] = 1.0  # a red bus: red on the bus's cells
    masks[elsewhere, 1, 3:] = 1.0  # red on something else
    difference = torch.as_tensor(rng.normal(0, 0.1, (n, 2)))
    difference[painted, 0] += 2.0  # a red bus reads differently: its make-up
    effects.update(difference, torch.arange(2), masks)
    row = effects.table(["bus", "red"], min_images=5).set_index(["source", "target"])
    assert row.loc[("bus", "red"), "n_with"] == 30 and row.loc[("bus", "red"), "n_without"] == 30
    assert abs(row.loc[("bus", "red"), "pair_z"]) < 4
    # had the painted buses counted as "with", the make-up would read as a pair
    present = torch.as_tensor(painted | elsewhere)
    assert abs(difference[present, 0].mean() - difference[~present, 0].mean()) > 0.5


def test_pair_z_is_welchs_t():
    from scipy import stats

    effects = inter.PairEffects(2)
    rng = np.random.default_rng(0)
    with_target, without = rng.normal(0.5, 1.0, 12), rng.normal(0.0, 2.0, 20)
    difference = torch.as_tensor(np.concatenate([with_target, without]))[:, None]
    masks = torch.zeros(32, 2, 4)
    masks[:, 0, :2], masks[:12, 1, 2:] = 1.0, 1.0  # the target apart from the source
    effects.update(torch.cat([difference, torch.zeros(32, 1)], 1), torch.arange(2), masks)
    table = effects.table(["source", "target"], min_images=5).set_index(["source", "target"])
    expected = stats.ttest_ind(with_target, without, equal_var=False).statistic
    assert table.loc[("source", "target"), "pair_z"] == pytest.approx(expected)
    assert table.loc[("source", "target"), "n_with"] == 12
    assert np.isnan(table.loc[("target", "target"), "pair_z"])
    few = effects.table(["source", "target"], min_images=13)
    assert few["pair_z"].isna().all()


def test_pair_effects_read_the_heads_whole_logit(tmp_path):
    """Pair effects compare the head's prediction with phase two's: a split head whose
    attended readout is zero and whose own readout is phase two's linearised one
    predicts what phase two predicts, so every pair effect is 0; the same head
    with an attended readout shows effects."""
    from test_training import MODEL

    from saldissect.data.inputs import read_visual_genome
    from saldissect.training.train import build_model

    synthetic.write_world(tmp_path, world(n_probe=30, objects_per_image=[2, 4]), progress=False)
    probe, concepts = read_visual_genome(tmp_path / "visual_genome")
    torch.manual_seed(0)
    frozen = build_model(MODEL, "factorised").eval()
    weights = torch.randn(frozen.n_bases)
    head = inter.InteractionHead(frozen.n_bases, dim=8, readout="split").eval()
    with torch.no_grad():
        head.readout.weight.zero_()
        head.own.weight.copy_(weights.view(1, -1, 1, 1))

    def effects():
        return inter.pair_effects(
            frozen,
            head,
            weights,
            probe,
            concepts,
            tuple(MODEL["input_size"]),
            min_cover=0.5,
            min_images=2,
            batch_size=8,
            device=torch.device("cpu"),
        )["pair_effect"].dropna()

    same = effects()
    assert len(same) > 0 and same.abs().max() < 1e-6
    with torch.no_grad():
        head.readout.weight.normal_()
    assert effects().abs().max() > 1e-3
