import numpy as np
import pandas as pd
import pytest

from saldissect.analysis.contributions import (
    beta,
    category_scores,
    contributions,
    with_readouts,
)
from saldissect.recovery.recovery import pool_controls, recovery


def alignment(rows):
    frame = pd.DataFrame(rows, columns=["basis", "concept", "mean_iou"])
    frame["kind"] = "object"
    return frame


def test_beta_keeps_top_k_normalised_and_drops_empty_bases():
    table = alignment([(0, "a", 0.6), (0, "b", 0.3), (0, "c", 0.1), (1, "a", 0.0), (1, "b", 0.0)])
    result = beta(table, top_k=2)
    assert list(result["basis"]) == [0, 0]
    assert result.set_index("concept")["beta"].to_dict() == pytest.approx({"a": 2 / 3, "b": 1 / 3})


def test_contributions_on_a_hand_made_case():
    # basis 0 (w = +2) is face (0.8) and sky (0.2); basis 1 (w = -1) is sky alone.
    table = alignment([(0, "face", 0.8), (0, "sky", 0.2), (1, "sky", 0.5), (1, "face", 0.0)])
    weights = pd.DataFrame({"basis": [0, 1], "weight": [2.0, -1.0]})
    result, cats = contributions(table, weights, {"face": "social", "sky": "sky"}, top_k=5)
    by = result.set_index("concept")
    assert by.loc["face", "contribution"] == pytest.approx(1.6)
    assert by.loc["sky", "contribution"] == pytest.approx(0.4 - 1.0)
    assert by.loc["face", "rank"] == 1 and by.loc["sky", "rank"] == -1
    assert by.loc["face", "normalized"] == 1.0 and by.loc["sky", "normalized"] == -1.0
    scores = cats.set_index("category")["contribution"]
    assert scores["social"] == 1.0 and scores["sky"] == -1.0 and scores["animal"] == 0.0


def test_readouts_join_the_contributions_by_concept():
    """Every concept gets both readouts; one the readouts never saw gets 0 and no
    interval; a name seen as object and attribute keeps the kind seen more often."""
    table = pd.DataFrame({"concept": ["face", "red", "wall"]})
    readouts = pd.DataFrame(
        {
            "concept": ["face", "red", "red"],
            "kind": ["object", "attribute", "object"],
            "n_images": [30, 20, 3],
            "contrast": [1.0, -0.4, 9.0],
            "contrast_low": [0.8, -0.6, 8.0],
            "contrast_high": [1.2, -0.2, 10.0],
            "regression": [1.1, -0.5, 9.0],
            "regression_low": [0.9, -0.7, 8.0],
            "regression_high": [1.3, -0.3, 10.0],
        }
    )
    joined = with_readouts(table, readouts).set_index("concept")
    assert joined.loc["red", "contrast"] == -0.4 and joined.loc["red", "regression_high"] == -0.3
    assert joined.loc["wall", "regression"] == 0.0 and np.isnan(joined.loc["wall", "contrast_low"])
    assert joined.loc["face", "regression_low"] == 0.9


def test_unmapped_concepts_count_as_other():
    table = alignment([(0, "gizmo", 0.5)])
    result, _ = contributions(table, pd.DataFrame({"basis": [0], "weight": [1.0]}), {})
    assert result.loc[0, "category"] == "other"


def test_category_scores_normalise_each_sign_separately():
    table = pd.DataFrame(
        {"category": ["social", "social", "text", "sky"], "normalized": [1.0, 0.5, 0.5, -0.25]}
    )
    scores = category_scores(table).set_index("category")["contribution"]
    assert (
        scores["social"] == 1.0 and scores["text"] == pytest.approx(1 / 3) and scores["sky"] == -1.0
    )


def test_recovery_counts_missing_concepts_as_zero_and_wrong_sign():
    planted = pd.DataFrame(
        {
            "concept": ["a", "b", "c"],
            "category": "other",
            "kind": "object",
            "weight": [1.0, -1.0, 0.1],
        }
    )
    recovered = pd.DataFrame({"concept": ["a", "c"], "contribution": [2.0, 0.5]})
    result = recovery(recovered, planted)
    assert result["n_signed"] == 2
    assert result["sign_agreement"] == 0.5  # b was never credited
    assert result["wrong_signs"] == "b -1.00 -> +0.00"
    assert result["spearman"] == pytest.approx(1.0)  # ranks agree: b (0) < c (0.5) < a (2)


def test_bootstrap_intervals_on_a_hand_made_case():
    import numpy as np

    from saldissect.analysis.contributions import with_intervals

    # One basis (w = +2) and one (w = -1). Replicate 0: basis 0 is face 0.6 and
    # sky 0.2 (beta 0.75 / 0.25), basis 1 is sky: face 1.5, sky 0.5 - 1 = -0.5.
    # Replicate 1: basis 0 is face 0.2, sky 0.2 (beta 0.5 each), basis 1 has no sky
    # image: face 1.0, sky 1.0.
    replicates = pd.DataFrame(
        {
            "replicate": [0, 0, 0, 1, 1],
            "basis": [0, 0, 1, 0, 0],  # basis 1 drew no sky image in replicate 1
            "concept": ["face", "sky", "sky", "face", "sky"],
            "kind": "object",
            "value": [0.6, 0.2, 0.5, 0.2, 0.2],
        }
    )
    point = alignment([(0, "face", 0.4), (0, "sky", 0.2), (1, "sky", 0.5)])
    weights = pd.DataFrame({"basis": [0, 1], "weight": [2.0, -1.0]})
    categories = {"face": "social", "sky": "sky"}
    table, cats = contributions(point, weights, categories, top_k=5)
    table, cats = with_intervals(table, cats, replicates, weights, top_k=5, top_n=30)
    by = table.set_index("concept")
    face_low, face_high = np.quantile([1.5, 1.0], [0.025, 0.975])
    sky_low, sky_high = np.quantile([-0.5, 1.0], [0.025, 0.975])
    assert by.loc["face", ["contribution_low", "contribution_high"]].tolist() == pytest.approx(
        [face_low, face_high]
    )
    assert by.loc["sky", ["contribution_low", "contribution_high"]].tolist() == pytest.approx(
        [sky_low, sky_high]
    )
    # normalised on the point estimate's scale: face is the only positive, 4/3.
    assert by.loc["face", "normalized_high"] == pytest.approx(face_high / (4 / 3))
    # Categories: replicate 0 gives social +1, sky -1; replicate 1 social +1, sky +1.
    cat = cats.set_index("category")
    assert cat.loc["social", ["contribution_low", "contribution_high"]].tolist() == [1.0, 1.0]
    assert cat.loc["sky", ["contribution_low", "contribution_high"]].tolist() == pytest.approx(
        list(np.quantile([-1.0, 1.0], [0.025, 0.975]))
    )


def test_without_replicates_the_interval_columns_are_nan():
    from saldissect.analysis.contributions import with_intervals
    from saldissect.analysis.dissection import empty_bootstrap

    point = alignment([(0, "face", 0.4)])
    weights = pd.DataFrame({"basis": [0], "weight": [1.0]})
    table, cats = contributions(point, weights, {"face": "social"})
    table, cats = with_intervals(table, cats, empty_bootstrap(), weights, top_k=5, top_n=30)
    assert table[["contribution_low", "normalized_high"]].isna().all().all()
    assert cats["contribution_low"].isna().all()


def test_a_replicate_that_aligned_nothing_still_counts():
    from saldissect.analysis.contributions import replicate_contributions

    replicates = pd.DataFrame(
        {"replicate": [0], "basis": [0], "concept": ["face"], "kind": "object", "value": [0.5]}
    )
    weights = pd.DataFrame({"basis": [0], "weight": [2.0]})
    matrix = replicate_contributions(replicates, weights, ["face"], top_k=5, n_replicates=3)
    assert matrix.tolist() == [[2.0], [0.0], [0.0]]  # replicates 1 and 2 drew no face image


def _validation_row(dataset, model, control, spearman, agreement, rank, readout="top-k IoU"):
    return {
        "dataset": dataset,
        "model": model,
        "control": control,
        "readout": readout,
        "n_concepts": 13,
        "spearman": spearman,
        "spearman_p": 0.5,
        "n_signed": 11,
        "sign_agreement": agreement,
        "min_abs_weight": 0.3,
        "wrong_signs": "" if control == "none" else "sky -0.70 -> +0.20",
        "interaction": "word -> face",
        "interaction_rank": rank,
        "interaction_row": 13,
        "pair_z_rank": rank,
        "pair_z": 1.0,
        "max_pair_z": 2.0,
    }


def test_several_controls_are_pooled_into_their_mean():
    table = pd.DataFrame(
        [
            _validation_row("world", "m", "none", 0.9, 1.0, 1.0),
            _validation_row("ctl1", "m", "shuffled maps", 0.5, 0.4, 9.0),
            _validation_row("ctl2", "m", "shuffled maps", -0.1, 0.6, 5.0),
            _validation_row("ctl3", "m", "shuffled maps", 0.2, 0.5, 7.0),
            _validation_row("ctl1", "lonely", "shuffled maps", 0.7, 0.5, 2.0),
        ]
    )
    pooled = pool_controls(table)
    assert len(pooled) == 6  # one pooled row, for the model with several controls
    row = pooled.iloc[-1]
    assert (row["dataset"], row["model"], row["control"]) == (
        "3 controls",
        "m",
        "mean of 3 shuffles",
    )
    assert row["spearman"] == pytest.approx(0.2)
    assert row["sign_agreement"] == pytest.approx(0.5)
    assert row["interaction_rank"] == pytest.approx(7.0)
    assert row["wrong_signs"] == ""  # one control's misses are not the pool's
    # z = 0.2 * sqrt(3 * 12) = 1.2: two-sided p 0.230
    assert row["spearman_p"] == pytest.approx(0.2301, abs=1e-3)


def test_controls_are_pooled_per_readout():
    rows = [
        _validation_row(f"ctl{i}", "m", "shuffled maps", rho, 0.5, 3.0, readout)
        for readout, values in (("top-k IoU", (0.4, 0.2)), ("contrast", (-0.2, 0.0)))
        for i, rho in enumerate(values)
    ]
    pooled = pool_controls(pd.DataFrame(rows)).iloc[4:]
    assert pooled.set_index("readout")["spearman"].to_dict() == pytest.approx(
        {"top-k IoU": 0.3, "contrast": -0.1}
    )


def test_a_single_control_is_not_pooled():
    table = pd.DataFrame([_validation_row("ctl", "m", "shuffled maps", 0.4, 0.5, 3.0)])
    assert pool_controls(table).equals(table)


def test_a_control_without_spearman_does_not_count():
    """A control that credits nothing has a NaN Spearman: pooled over the others."""
    table = pd.DataFrame(
        [
            _validation_row("ctl1", "m", "shuffled maps", 0.3, 0.5, 3.0),
            _validation_row("ctl2", "m", "shuffled maps", float("nan"), 0.0, float("nan")),
            _validation_row("ctl3", "m", "shuffled maps", 0.3, 0.5, 5.0),
        ]
    )
    row = pool_controls(table).iloc[-1]
    assert row["dataset"] == "2 controls" and row["spearman"] == pytest.approx(0.3)
    # z = 0.3 * sqrt(2 * 12) = 1.47: two-sided p 0.142
    assert row["spearman_p"] == pytest.approx(0.1416, abs=1e-3)
    assert row["sign_agreement"] == pytest.approx(0.5)
