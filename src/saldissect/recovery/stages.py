"""The stage of workflow/rules/recovery.smk: the synthetic recovery check
(`saldissect.recovery.recovery`). Named as its rule (`saldissect.core.stage`)."""

from __future__ import annotations

from saldissect.core.io import write_table
from saldissect.core.stage import Files, Params
from saldissect.recovery.recovery import plot_recovery, recovery_table


def check_recovery(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Recovered vs planted weights of every synthetic run, as a table and a figure."""
    runs, labels = list(input["runs"]), params["labels"]
    table = recovery_table(
        runs,
        labels,
        input["planted"],
        min_abs_weight=params["min_abs_weight"],
        interaction=params["interaction"],
    )
    write_table(table, output["csv"], output["md"])
    named = {
        f"{label['dataset']}/{label['model']}": path
        for path, label in zip(runs, labels, strict=True)
    }
    plot_recovery(named, input["planted"], output["png"], params["min_abs_weight"])
