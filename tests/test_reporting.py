import numpy as np
import pandas as pd
import pytest

from saldissect.report.reporting import metric_intervals, with_brackets


def scores(values: dict[str, list[float]], metric: str = "cc") -> pd.DataFrame:
    return pd.concat(
        pd.DataFrame({"variant": v, "image_id": range(len(x)), "metric": metric, "value": x})
        for v, x in values.items()
    )


def test_metric_interval_of_a_constant_is_the_constant():
    table = metric_intervals(scores({"phase1": [0.4] * 10}))
    assert table[["low", "high"]].iloc[0].tolist() == pytest.approx([0.4, 0.4])


def test_metric_interval_matches_the_normal_approximation_and_variants_share_draws():
    rng = np.random.default_rng(0)
    values = rng.normal(0.5, 0.2, 400).tolist()
    table = metric_intervals(scores({"a": values, "b": values}), replicates=4000).set_index(
        "variant"
    )
    half = 1.96 * np.std(values) / np.sqrt(len(values))  # 0.0196 for sd 0.2, n 400
    low, high = table.loc["a", ["low", "high"]]
    assert low == pytest.approx(np.mean(values) - half, abs=0.004)
    assert high == pytest.approx(np.mean(values) + half, abs=0.004)
    assert table.loc["a"].tolist() == table.loc["b"].tolist()  # identical resamples


def test_markdown_puts_intervals_in_brackets():
    table = pd.DataFrame({"model": ["m"], "cc": [0.5], "cc_low": [0.41], "cc_high": [0.6]})
    assert with_brackets(table).to_dict("records") == [{"model": "m", "cc": "0.500 [0.410, 0.600]"}]


def test_a_per_fixation_interval_is_the_weighted_means_and_contains_it():
    """Images with many fixations score high, few low: the weighted mean and its
    interval sit above the plain ones."""
    values = [0.9] * 20 + [0.1] * 20
    frame = scores({"a": values}, metric="nss").assign(n_fixations=[30] * 20 + [3] * 20)
    plain = metric_intervals(frame).iloc[0]
    weighted = metric_intervals(frame, per_fixation={"nss"}).iloc[0]
    mean = np.average(values, weights=frame["n_fixations"])  # 0.827
    assert weighted["low"] < mean < weighted["high"]
    assert plain["high"] < weighted["low"]


def test_the_metrics_table_says_how_each_metric_is_averaged(tmp_path):
    from saldissect.core.io import write_parquet
    from saldissect.report.reporting import averaging_note, metrics_table

    path = tmp_path / "dinet" / "metrics.parquet"
    path.parent.mkdir()
    rows = [("cc", "image"), ("nss", "fixation"), ("ig", "fixation")]
    metrics = pd.DataFrame(
        [
            {"variant": "phase1", "metric": m, "value": 0.5, "n_images": 4, "averaging": a}
            for m, a in rows
        ]
    )
    write_parquet(metrics, path, "metrics")
    note = averaging_note([str(path)])
    assert (
        "per image: cc" in note
        and "per fixation (each image weighted by its fixations): ig, nss" in note
    )
    assert "bits per fixation" in note
    table = metrics_table([str(path)])
    assert set(table.columns) == {"model", "variant", "n_images", "cc", "nss", "ig"}
