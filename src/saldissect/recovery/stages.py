"""The stage of workflow/rules/recovery.smk: the synthetic recovery check
(`saldissect.recovery.recovery`). Named as its rule (`saldissect.core.stage`)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from saldissect.core.errors import UserError
from saldissect.core.io import read_parquet, write_atomic, write_parquet, write_table
from saldissect.core.stage import Files, Params
from saldissect.recovery.recovery import accept, failures, plot_recovery, recovery_table
from saldissect.recovery.sweep import (
    pair_summary,
    planted_and_recovered,
    sign_errors,
    summary,
    world_config,
)

log = logging.getLogger(__name__)


class RecoveryFailed(UserError):
    """The recovery check's acceptance thresholds are not met."""


class SweepFailed(UserError):
    """The workflow failed on one world of the sweep."""


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


def sweep_world(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """The workflow, up to its recovery table, on one world of the sweep
    (`saldissect.recovery.sweep.world_config`), in its own folder ``params["work"]``;
    its recovery table and its real runs' planted vs recovered values come back."""
    work = Path(params["work"])
    work.mkdir(parents=True, exist_ok=True)
    config = world_config(params["config"], wildcards["world"])
    (work / "world.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    dataset = next(n for n, d in config["datasets"].items() if not d.get("shuffle_maps"))
    table = f"results/{dataset}/tables/recovery.csv"
    command = [sys.executable, "-m", "snakemake", table, "--snakefile", params["snakefile"]]
    command += ["--directory", str(work), "--configfile", str((work / "world.yaml").resolve())]
    command += ["--cores", str(threads)]
    log.info("world %s: %s", wildcards["world"], " ".join(command))
    last: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout:  # the world's own log, into this job's (no progress bars)
            if "it/s]" in line or "s/it]" in line:
                continue
            log.info("%s", line.rstrip())
            last = [*last[-29:], line.rstrip()]
    if process.returncode != 0:
        raise SweepFailed(
            f"world {wildcards['world']}: the workflow failed in {work} (its logs: "
            f"{work}/results/logs/); last lines:\n" + "\n".join(last)
        )
    recovery = pd.read_csv(work / table, keep_default_na=False, na_values=[""])
    recovery.insert(0, "world", wildcards["world"])
    write_atomic(output["csv"], lambda tmp: recovery.to_csv(tmp, index=False))
    planted = read_parquet(work / "results/world/planted.parquet", "planted")
    runs = {
        d: read_parquet(work / f"results/{d}/{m}/contributions.parquet", "contributions")
        for d in config["datasets"]
        if not config["datasets"][d].get("shuffle_maps")
        for m in config["models"]
    }
    concepts = planted_and_recovered(runs, planted).assign(world=wildcards["world"])
    write_parquet(concepts, output["concepts"], "sweep_concepts")


def sweep_recovery(
    input: Files, output: Files, params: Params, threads: int = 1, wildcards: Params | None = None
) -> None:
    """Every world's recovery table stacked, with a summary per readout and the wrong
    signs by concept kind (``tables/recovery.md``)."""
    tables = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in input["tables"]]
    table = pd.concat(tables, ignore_index=True)
    concepts = pd.concat([read_parquet(p, "sweep_concepts") for p in input["concepts"]])
    columns = ["world", "dataset", "control", "readout", "spearman", "spearman_p"]
    columns += ["sign_agreement", "status"]
    parts = [
        "# Recovery over the sweep's worlds",
        "",
        summary(table).to_markdown(index=False, floatfmt=".3f"),
        "",
        "The planted pair (ranks in its source's row; z: Welch z of the pair effect):",
        "",
        pair_summary(table).to_markdown(index=False, floatfmt=".2f"),
        "",
        table[columns].to_markdown(index=False, floatfmt=".3f"),
        "",
        "Wrong signs (|weight| >= " + f"{params['min_abs_weight']:g}) by readout and kind:",
        "",
        sign_errors(concepts, params["min_abs_weight"]).to_markdown(index=False),
        "",
    ]
    write_atomic(output["csv"], lambda tmp: table.to_csv(tmp, index=False))
    write_atomic(output["md"], lambda tmp: tmp.write_text("\n".join(parts)))
    for line in failures(table):
        log.warning("%s", line)
