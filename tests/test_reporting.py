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
