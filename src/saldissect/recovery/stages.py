"""The stage of workflow/rules/recovery.smk: the synthetic recovery check
(`saldissect.recovery.recovery`). Named as its rule (`saldissect.core.stage`)."""

from __future__ import annotations

import logging

import pandas as pd

from saldissect.core.errors import UserError
from saldissect.core.io import write_atomic, write_table
from saldissect.core.stage import Files, Params
from saldissect.recovery.recovery import accept, failures, plot_recovery, recovery_table

log = logging.getLogger(__name__)


class RecoveryFailed(UserError):
    """The recovery check's acceptance thresholds are not met."""


def check_recovery(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Recovered vs planted weights of every synthetic run, as a table and a figure,
    each row with its status against ``params["acceptance"]`` (rule
    ``accept_recovery`` fails the run on a failing row)."""
    runs, labels = list(input["runs"]), params["labels"]
    table = recovery_table(
        runs,
        labels,
        input["planted"],
        min_abs_weight=params["min_abs_weight"],
        interaction=params["interaction"],
    )
    table = accept(table, params["acceptance"])
    write_table(table, output["csv"], output["md"])
    named = {
        f"{label['dataset']}/{label['model']}": path
        for path, label in zip(runs, labels, strict=True)
    }
    plot_recovery(named, input["planted"], output["png"], params["min_abs_weight"])


def accept_recovery(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Fail, naming every failing row of the recovery table, or write its summary."""
    table = pd.read_csv(input["csv"], keep_default_na=False, na_values=[""])
    failing = failures(table)
    if failing:
        raise RecoveryFailed(
            f"the recovery check fails ({input['csv']}; thresholds: recovery.acceptance):\n  "
            + "\n  ".join(failing)
        )
    checked = table["status"] == "pass"
    summary = f"recovery accepted: {int(checked.sum())} rows pass, none fails\n"
    write_atomic(output["accepted"], lambda tmp: tmp.write_text(summary))
    log.info(summary.strip())
