"""The synthetic recovery check (docs/method.md 8, "Recovery"): does the
workflow recover the weights planted in the synthetic world, and find nothing
where the maps were shuffled?

Per run (a model on a synthetic dataset, controls and seed replicates
included) and per readout of the contributions (`READOUTS`): the Spearman
correlation of recovered with planted weights, the sign agreement over the
concepts planted with |weight| >= ``min_abs_weight``, and, where the run has
semantic interactions, the rank of the planted pair in its source's row by S
and by the pair effect's z, and the run's largest pair z (what a world with no
planted pair, or a control, shows). Several shuffled controls are pooled into
their mean (`pool_controls`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from saldissect.core.io import SCHEMAS, check_schema, read_parquet  # noqa: E402
from saldissect.report import reporting  # noqa: E402

log = logging.getLogger(__name__)

#: Readout name: its column of the contributions table.
READOUTS = {"top-k IoU": "contribution", "contrast": "contrast", "regression": "regression"}
#: Each readout's section in the config's ``recovery.acceptance``.
READOUT_KEYS = {"top-k IoU": "top_k_iou", "contrast": "contrast", "regression": "regression"}


def planted_vs_recovered(
    contribution: pd.DataFrame, planted: pd.DataFrame, column: str = "contribution"
) -> pd.DataFrame:
    """The planted table with each concept's recovered ``column`` as ``contribution``
    (0 if never credited)."""
    recovered = contribution[["concept", column]].rename(columns={column: "contribution"})
    merged = planted.merge(recovered, on="concept", how="left")
    merged["contribution"] = merged["contribution"].fillna(0.0)
    return merged


def recovery(
    contribution: pd.DataFrame,
    planted: pd.DataFrame,
    *,
    min_abs_weight: float = 0.3,
    column: str = "contribution",
) -> dict:
    """How well recovered contributions (``column``: the paper's ``contribution``
    or the ``contrast`` readout) match planted weights.

    Spearman rank correlation over all planted concepts (a concept the
    dissection never credited counts as 0) and sign agreement over concepts
    with |weight| >= ``min_abs_weight`` (a contribution of exactly 0 is wrong);
    ``wrong_signs`` names those signed wrong, e.g. ``wall +0.30 -> -0.18``.
    """
    from scipy import stats  # here: scipy.stats takes half a second to import

    merged = planted_vs_recovered(contribution, planted, column)
    rho, p = stats.spearmanr(merged["weight"], merged["contribution"])
    signed = merged[merged["weight"].abs() >= min_abs_weight]
    agree = np.sign(signed["weight"]) == np.sign(signed["contribution"])
    wrong = signed[~agree]
    return {
        "n_concepts": len(merged),
        "spearman": float(rho),
        "spearman_p": float(p),
        "n_signed": len(signed),
        "sign_agreement": float(agree.mean()) if len(signed) else float("nan"),
        "min_abs_weight": float(min_abs_weight),
        "wrong_signs": ", ".join(
            f"{c} {w:+.2f} -> {v:+.2f}"
            for c, w, v in zip(
                wrong["concept"], wrong["weight"], wrong["contribution"], strict=True
            )
        ),
    }


def pool_controls(table: pd.DataFrame) -> pd.DataFrame:
    """Add one row per model that has several shuffled controls: their mean.

    One control's Spearman is a single draw from a null whose standard
    deviation is 1 / sqrt(n - 1) (0.29 for 13 concepts), so one draw says
    little; the mean of k independent controls has k times less variance.
    The pooled row's p-value is the two-sided normal approximation
    ``z = mean * sqrt(k (n - 1))``, which holds for independent controls:
    controls of one world share its images, so read it as nominal. Sign
    agreement and the planted pair's rank are means too. ``table`` has the
    columns of the validation table.
    """
    # A control that credits no concept has no Spearman: it does not count.
    controls = table[(table["control"] == "shuffled maps") & np.isfinite(table["spearman"])]
    pooled = []
    for (model, readout), rows in controls.groupby(["model", "readout"], sort=False):
        if len(rows) < 2:
            continue
        k, n = len(rows), int(rows["n_concepts"].iloc[0])
        mean = float(rows["spearman"].mean())
        z = mean * math.sqrt(k * max(n - 1, 1))
        pooled.append(
            {
                **rows.iloc[0].to_dict(),
                "dataset": f"{k} controls",
                "model": model,
                "readout": readout,
                "control": f"mean of {k} shuffles",
                "spearman": mean,
                "spearman_p": math.erfc(abs(z) / math.sqrt(2)),
                "sign_agreement": float(rows["sign_agreement"].mean()),
                "wrong_signs": "",
                "interaction_rank": float(rows["interaction_rank"].mean()),
                "pair_z_rank": float(rows["pair_z_rank"].mean()),
                "pair_z": float(rows["pair_z"].mean()),
                "max_pair_z": float(rows["max_pair_z"].max()),
            }
        )
    if not pooled:
        return table
    return pd.concat([table, pd.DataFrame(pooled, columns=table.columns)], ignore_index=True)


def pair_rank(
    semantic: pd.DataFrame, source: str, target: str, column: str = "weight"
) -> tuple[float, int]:
    """Rank of ``target`` in the row of ``source`` by ``column`` (1 = strongest) and
    the row's length (entries with a value).

    Ties count against the pair (its rank is the number of targets at least as
    strong), so a row of zeros, a source no basis credits, ranks it last. NaN
    when either concept is missing from the table or the pair has no value
    (a pair effect needs images with and without the target).
    """
    row = semantic[(semantic["source"] == source) & semantic[column].notna()]
    if row.empty or target not in set(row["target"]):
        return float("nan"), len(row)
    value = float(row.loc[row["target"] == target, column].iloc[0])
    return float((row[column] >= value).sum()), len(row)


def recovery_table(
    runs: list[str],
    labels: list[dict],
    planted: str,
    *,
    min_abs_weight: float,
    interaction: dict | None = None,
) -> pd.DataFrame:
    """Recovery of the planted weights for every synthetic run, controls and seed
    replicates included; where a label (dataset, model, control) names its run's
    ``semantic`` interactions, also the rank of the planted pair in its source's row."""
    truth = read_parquet(planted, "planted")
    rows = []
    for path, label in zip(runs, labels, strict=True):
        contributions = read_parquet(path, "contributions")
        pair = _planted_pair_rank(label.get("semantic"), interaction)  # one read per run
        for readout, column in READOUTS.items():
            result = recovery(contributions, truth, min_abs_weight=min_abs_weight, column=column)
            result.update(pair)
            rows.append(
                {
                    "dataset": label["dataset"],
                    "model": label["model"],
                    "control": "shuffled maps" if label["control"] else "none",
                    "readout": readout,
                    **result,
                }
            )
            log.info(
                "%s/%s, %s: Spearman %.3f, sign agreement %.3f",
                label["dataset"],
                label["model"],
                readout,
                result["spearman"],
                result["sign_agreement"],
            )
    table = pd.DataFrame(rows, columns=[c for c in SCHEMAS["recovery"] if c != "status"])
    return pool_controls(table)


def accept(table: pd.DataFrame, acceptance: dict) -> pd.DataFrame:
    """``table`` with a ``status`` per row: ``pass``, ``fail: <why>`` or ``not checked``.

    A real run (control ``none``) fails when its Spearman or sign agreement is
    below its readout's ``min_spearman`` / ``min_sign_agreement``, or, with
    ``max_pair_rank`` set, when the planted pair ranks below it in its source's
    row by the pair effect's z. A control
    fails when its |Spearman| exceeds ``max_control_spearman`` and its p-value
    is below ``control_alpha`` (a single control is one draw from the null, sd
    1/sqrt(n - 1) = 0.29 for 13 concepts: only a significant one says the
    workflow finds what is not there). Where a model has several controls,
    their pooled mean is checked and the single draws are not.
    """
    means = table[table["control"].str.startswith("mean of")]
    pooled = set(zip(means["model"], means["readout"], strict=True))
    status = []
    for row in table.itertuples(index=False):
        if row.control == "none":
            status.append(_real_status(row, acceptance))
        elif row.control == "shuffled maps" and (row.model, row.readout) in pooled:
            status.append("not checked (pooled below)")
        else:
            status.append(_control_status(row, acceptance))
    return check_schema(table.assign(status=status), "recovery")


def _real_status(row, acceptance: dict) -> str:
    limits = acceptance[READOUT_KEYS[row.readout]]
    problems = []
    if not row.spearman >= limits["min_spearman"]:  # NaN (nothing credited) fails
        problems.append(f"Spearman {row.spearman:.3f} < {limits['min_spearman']}")
    if row.n_signed and not row.sign_agreement >= limits["min_sign_agreement"]:
        problems.append(
            f"signs right {row.sign_agreement:.2f} < {limits['min_sign_agreement']}"
            + (f" ({row.wrong_signs})" if row.wrong_signs else "")
        )
    most = acceptance.get("max_pair_rank")
    if most is not None and row.interaction != "none" and not row.pair_z_rank <= most:
        problems.append(f"planted pair's rank by pair effect {row.pair_z_rank:g} > {most}")
    return "fail: " + "; ".join(problems) if problems else "pass"


def _control_status(row, acceptance: dict) -> str:
    limit, alpha = acceptance["max_control_spearman"], acceptance["control_alpha"]
    if np.isfinite(row.spearman) and abs(row.spearman) > limit and row.spearman_p < alpha:
        return f"fail: control Spearman {row.spearman:.3f} (p {row.spearman_p:.2g}) beyond {limit}"
    return "pass"


def failures(table: pd.DataFrame) -> list[str]:
    """One line per failing row of an accepted table: dataset/model, control, readout, why."""
    failing = table[table["status"].str.startswith("fail")]
    return [
        f"{r.dataset}/{r.model} ({r.control}, {r.readout}): {r.status[len('fail: ') :]}"
        for r in failing.itertuples(index=False)
    ]


def _planted_pair_rank(semantic: str | None, interaction: dict | None) -> dict:
    """The planted pair's rank in its row of a semantic interaction table, by S and
    by the pair effect's z, and the run's largest pair z (any pair)."""
    result = {
        "interaction": "none",
        "interaction_rank": float("nan"),
        "interaction_row": 0,
        "pair_z_rank": float("nan"),
        "pair_z": float("nan"),
        "max_pair_z": float("nan"),
    }
    if not semantic:
        return result
    table = read_parquet(semantic, "semantic_interactions")
    result["max_pair_z"] = float(table["pair_z"].max())  # NaN when no pair has a value
    if not interaction or not interaction.get("source"):
        return result
    source, target = interaction["source"], interaction["target"]
    rank, size = pair_rank(table, source, target)
    z_rank, _ = pair_rank(table, source, target, "pair_z")
    chosen = table[(table["source"] == source) & (table["target"] == target)]["pair_z"]
    pair = f"{source} -> {target}"
    log.info(
        "%s: planted pair %s ranks %s of %d in its row of S, %s by pair effect",
        semantic,
        pair,
        rank,
        size,
        z_rank,
    )
    return {
        **result,
        "interaction": pair,
        "interaction_rank": rank,
        "interaction_row": size,
        "pair_z_rank": z_rank,
        "pair_z": float(chosen.iloc[0]) if len(chosen) else float("nan"),
    }


def plot_recovery(
    runs: dict[str, str], planted: str | Path, out: str | Path, min_abs_weight: float
) -> None:
    """Recovered against planted weight, one column per run, one row per readout
    (the paper's top-k IoU contribution, the contrast, the regression)."""
    truth = read_parquet(planted, "planted")
    fig, axes = plt.subplots(
        len(READOUTS), len(runs), figsize=(4.2 * len(runs), 4.0 * len(READOUTS)), squeeze=False
    )
    for column, (key, path) in enumerate(sorted(runs.items())):
        table = read_parquet(path, "contributions")
        for ax, (readout, name) in zip(axes[:, column], READOUTS.items(), strict=True):
            merged = planted_vs_recovered(table, truth, name)
            colours = [reporting.CATEGORY_COLOURS.get(c, "grey") for c in merged["category"]]
            ax.scatter(merged["weight"], merged["contribution"], c=colours, s=28)
            for row in merged.itertuples():
                ax.annotate(
                    row.concept,
                    (row.weight, row.contribution),
                    fontsize=6,
                    xytext=(2, 2),
                    textcoords="offset points",
                )
            ax.axhline(0, color="black", lw=0.6)
            for x in (-min_abs_weight, min_abs_weight):
                ax.axvline(x, color="grey", lw=0.6, ls=":")
            ax.set_xlabel("planted weight")
            ax.set_ylabel(f"recovered ({readout})")
            stats = recovery(table, truth, min_abs_weight=min_abs_weight, column=name)
            ax.set_title(
                f"{key}, {readout}\nSpearman {stats['spearman']:.2f}, signs right "
                f"{stats['sign_agreement']:.0%} of {stats['n_signed']}",
                fontsize=9,
            )
    reporting.save_figure(fig, out)
