"""The workflow on a real Slurm cluster, through snakemake-executor-plugin-slurm.

A single-node Slurm (munged, slurmctld, slurmd from Debian's packages; two fake
GPUs) is brought up in a temporary directory by tests/slurm/cluster.py and
stopped by PID afterwards, even when a test fails. Three runs then go at once:

- slurm: the tiny world of test_workflow.py (without its shuffled control, with
  gpus: 1 so that every GPU rule asks for one) up to its recovery and metrics
  tables (`TARGETS`) with `--profile profiles/slurm`,
  plus tests/slurm/profile, which only adapts the status checks to a cluster
  without slurmdbd: every job must be a completed Slurm job, GPU rules must
  have asked for --gpus=1;
- local: the same configuration with `--profile profiles/local`: same artifacts;
- broken: a world too small for one batch, so prepare_data fails on the
  cluster: the run must fail naming the rule.

Skipped when Slurm or munge is not installed or not running as root, unless
SALDISSECT_REQUIRE_SLURM=1 (as in .ci/run), which turns that into a failure.
About 3-4 minutes on 2 cores.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm.cluster import (
    SYSTEM_CONF,
    SlurmCluster,
    SlurmError,
    missing_programs,
    system_conf_taken,
)
from test_workflow import TINY

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = ROOT / "tests" / "slurm" / "profile"
REQUIRE = os.environ.get("SALDISSECT_REQUIRE_SLURM") == "1"
# The tiny world on CPU, one thread per job, and one GPU asked for by every GPU rule.
TINY_SLURM = {"device": "cpu", "threads": 1, "gpus": 1}
RUN_TIMEOUT = 600
# Every GPU rule of a model and a table rule that runs where Snakemake does (the
# interaction analyses, examples and failures add jobs of the same kinds).
TARGETS = ["results/synthetic/tables/recovery.md", "results/synthetic/tables/metrics.md"]

pytestmark = pytest.mark.slow(seconds=250)

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.?$")
SBATCH = re.compile(r"sbatch call: (sbatch .*)$")


def unavailable() -> str | None:
    missing = missing_programs()
    if missing:
        return (
            f"Slurm is not installed (missing {', '.join(missing)}): "
            "apt-get install slurmctld slurmd slurm-client munge"
        )
    if os.geteuid() != 0:
        return "the test cluster's slurmd must run as root"
    if system_conf_taken():
        return (
            f"{SYSTEM_CONF} exists (this machine's own Slurm, or another run of this test): "
            "not touched"
        )
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = unavailable()
    if reason:
        if REQUIRE:
            pytest.fail(f"SALDISSECT_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    # 4 CPUs at least, so that the tiny jobs of one DAG level never queue for a
    # core (each mostly waits for Python to start); two fake GPUs.
    instance = SlurmCluster(cpus=max(4, os.cpu_count() or 1), gpus=2)
    try:
        instance.start()
    except SlurmError as error:
        instance.cleanup()
        pytest.fail(f"could not start the test Slurm cluster: {error}")
    yield instance
    instance.cleanup()


def merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def tiny_config() -> dict:
    """test_workflow's tiny world, one thread and one GPU a job, without the shuffled control.

    Every rule still runs (once); the control would only run each of them again.
    A --configfile can add keys but not remove one, so this replaces config/config.yaml.
    """
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["datasets"] = {
        name: dataset
        for name, dataset in config["datasets"].items()
        if not dataset.get("shuffle_maps")
    }
    return merge(merge(config, yaml.safe_load(TINY)), TINY_SLURM)


def scratch_copy(dest: Path, **overrides) -> Path:
    """The workflow (as the workflow_dir fixture copies it), its profiles, the tiny config."""
    dest.mkdir(parents=True)
    for name in ("Snakefile", "workflow", "config", "envs", "profiles"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        elif source.exists():
            shutil.copy(source, dest / name)
    config = merge(tiny_config(), overrides)
    (dest / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def start_snakemake(cwd: Path, args, env=None, log="snakemake.out") -> subprocess.Popen:
    handle = open(cwd / log, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    handle.close()
    process.log = cwd / log
    return process


def wait_all(processes: dict[str, subprocess.Popen], timeout: float = RUN_TIMEOUT) -> dict:
    """Wait for every Snakemake; return name -> seconds it ran. Past the timeout,
    interrupt what still runs (SIGINT: Snakemake cancels its Slurm jobs) and fail."""
    started, seconds = time.monotonic(), {}
    while len(seconds) < len(processes) and time.monotonic() - started < timeout:
        for name, process in processes.items():
            if name not in seconds and process.poll() is not None:
                seconds[name] = time.monotonic() - started
        time.sleep(0.5)
    late = [name for name in processes if name not in seconds]
    for name in late:
        processes[name].send_signal(signal.SIGINT)
    for name in late:
        try:
            processes[name].wait(60)
        except subprocess.TimeoutExpired:
            processes[name].kill()
            processes[name].wait()
    if late:
        tails = "\n".join(f"--- {n}\n{processes[n].log.read_text()[-2000:]}" for n in late)
        pytest.fail(f"still running after {timeout} s: {', '.join(late)}\n{tails}")
    return seconds


@dataclass
class Run:
    workdir: Path
    returncode: int
    output: str
    seconds: float
    jobs: dict = field(default_factory=dict)  # Snakemake jobid -> {rule, resources, ...}


def parse_jobs(output: str) -> dict[str, dict[str, str]]:
    """Snakemake's job blocks ("rule NAME:" then indented "key: value" lines) by jobid."""
    jobs, current = {}, None
    for line in output.splitlines():
        match = re.match(r"^(?:local)?rule (\w+):$", line)
        if match:
            current = {"rule": match.group(1)}
            continue
        if current is not None and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            current[key] = value
            if key == "jobid":
                jobs[value] = current
            continue
        current = None
    return jobs


def job_stats(output: str) -> dict[str, int]:
    """The "Job stats" table Snakemake prints before it starts: rule -> count."""
    table = output.split("Job stats:", 1)[1].splitlines()[3:]
    counts = {}
    for line in table:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory) -> dict[str, Run]:
    """Three runs at once, each in its own copy of the workflow.

    slurm: the tiny world through Slurm; local: the same on this machine (it
    fills the CPU while the Slurm run waits for its status checks); broken: a
    world too small for one batch, so its prepare_data job fails on the cluster.
    """
    base = tmp_path_factory.mktemp("slurm-runs")
    on_slurm = [*TARGETS, "--profile", "profiles/slurm", "--workflow-profile", str(OVERLAY)]
    plans = {
        "slurm": (scratch_copy(base / "slurm"), [*on_slurm, "--verbose"], cluster.env),
        "broken": (scratch_copy(base / "broken", synthetic={"n_train": 4}), on_slurm, cluster.env),
        "local": (
            scratch_copy(base / "local"),
            [*TARGETS, "--profile", "profiles/local", "--cores", "2"],
            {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")},
        ),
    }
    processes = {name: start_snakemake(cwd, args, env) for name, (cwd, args, env) in plans.items()}
    try:
        seconds = wait_all(processes)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    print("\n" + ", ".join(f"{name} run: {seconds[name]:.0f} s" for name in processes))
    results = {}
    for name, process in processes.items():
        output = process.log.read_text(errors="replace")
        results[name] = Run(plans[name][0], process.returncode, output, seconds[name])
        results[name].jobs = parse_jobs(output)
    return results


@pytest.fixture(scope="module")
def slurm_run(runs) -> Run:
    return runs["slurm"]


def submissions(output: str) -> list[tuple[str, str, str]]:
    """(Snakemake jobid, Slurm job id, Slurm log) of every job the plugin submitted."""
    return [m.groups() for m in map(SUBMITTED.search, output.splitlines()) if m]


def squeue(cluster, *fields: str) -> list[list[str]]:
    """Every job the cluster still knows (finished ones too, for MinJobAge)."""
    out = cluster.run("squeue", "--states=all", "--noheader", f"--format={'|'.join(fields)}").stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def local_rules() -> set[str]:
    """The workflow's localrules (tables and figures): they run where Snakemake runs."""
    text = (Path(__file__).resolve().parents[1] / "workflow/rules/report.smk").read_text()
    block = text.split("localrules:\n", 1)[1].split("\n\n", 1)[0]
    return {line.strip().rstrip(",") for line in block.splitlines() if line.strip()}


def test_every_job_ran_as_a_slurm_job(slurm_run, cluster):
    assert slurm_run.returncode == 0, slurm_run.output[-5000:]
    submitted = submissions(slurm_run.output)
    stats = {rule: n for rule, n in job_stats(slurm_run.output).items() if rule != "all"}
    local = local_rules()
    assert {"make_tables", "plot_interactions"} <= local
    # every job but the table and figure rules' went to Slurm
    expected = {rule: n for rule, n in stats.items() if rule not in local}
    assert len(expected) >= 8, expected
    assert set(stats) & local, "the run made no table or figure"
    # each Snakemake job was submitted once, under its own Slurm job id
    by_rule: dict[str, int] = {}
    slurm_ids = {}
    for jobid, slurm_id, log in submitted:
        rule = slurm_run.jobs[jobid]["rule"]
        by_rule[rule] = by_rule.get(rule, 0) + 1
        slurm_ids[slurm_id] = (rule, Path(log))
    assert by_rule == expected
    assert len(slurm_ids) == sum(expected.values())
    # Slurm itself ran them all to completion, each named after its rule
    states = {job: (state, comment) for job, state, comment in squeue(cluster, "%i", "%T", "%k")}
    for slurm_id, (rule, log) in slurm_ids.items():
        state, comment = states[slurm_id]
        assert state == "COMPLETED", (slurm_id, rule, state)
        assert comment.startswith(f"rule_{rule}"), (slurm_id, rule, comment)
        # the job's Slurm log holds the Snakemake that ran inside the allocation
        text = log.read_text()
        assert f"rule {rule}:" in text and "--executor slurm-jobstep" in text, log
    finished = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", slurm_run.output)
    if "all" in finished:
        finished.remove("all")  # the target rule runs nothing
    # the Slurm jobs and the local table and figure jobs all finished
    assert sorted(finished) == sorted(r for r, n in stats.items() for _ in range(n))
    assert "100%) done" in slurm_run.output


def test_gpu_rules_asked_slurm_for_gpus(slurm_run, cluster):
    assert slurm_run.returncode == 0, slurm_run.output[-5000:]
    calls = {}  # Slurm log path pattern -> sbatch call
    for line in slurm_run.output.splitlines():
        match = SBATCH.search(line)
        if match:
            call = match.group(1)
            calls[re.search(r"--output (\S+)", call).group(1)] = call
    gpu_rules, cpu_rules = set(), set()
    for jobid, slurm_id, log in submissions(slurm_run.output):
        job = slurm_run.jobs[jobid]
        call = calls[log.replace(f"/{slurm_id}.log", "/%j.log")]
        record = cluster.run("scontrol", "--oneliner", "show", "job", slurm_id).stdout
        if "gpu=1" in job["resources"].split(", "):
            gpu_rules.add(job["rule"])
            assert "--gpus=1" in call.split(), call
            assert "TresPerJob=gres:gpu:1" in record, record
        else:
            cpu_rules.add(job["rule"])
            assert "--gpus" not in call, call
            assert "gres:gpu" not in record, record
    assert {"train_phase1", "train_phase2", "dissect_bases"} <= gpu_rules
    assert {"generate_world", "prepare_data"} <= cpu_rules


def comparable(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame.drop(columns=[c for c in ("seconds",) if c in frame.columns])


def test_slurm_artifacts_equal_a_local_run(runs):
    slurm, local = runs["slurm"], runs["local"]
    assert slurm.returncode == 0, slurm.output[-5000:]
    assert local.returncode == 0, local.output[-5000:]
    slurm_results = slurm.workdir / "results"
    local_results = local.workdir / "results"
    tables = sorted(p.relative_to(local_results) for p in local_results.glob("*/tables/*"))
    assert any(t.name == "recovery.csv" for t in tables), tables
    for table in tables:
        assert (slurm_results / table).read_bytes() == (local_results / table).read_bytes(), table
    artifacts = sorted(p.relative_to(local_results) for p in local_results.rglob("*.parquet"))
    assert len(artifacts) >= 10, artifacts
    for artifact in artifacts:
        pd.testing.assert_frame_equal(
            comparable(slurm_results / artifact), comparable(local_results / artifact)
        )


def test_a_job_failing_on_the_cluster_fails_the_run_naming_its_rule(runs, cluster):
    broken = runs["broken"]
    assert broken.returncode != 0, broken.output[-3000:]
    assert "Error in rule prepare_data" in broken.output, broken.output[-3000:]
    # the rule's own log, printed with the error: what was wrong
    assert "fewer than a batch" in broken.output, broken.output[-3000:]
    failed = re.findall(r"SLURM-job '(\d+)' failed, SLURM status is: 'FAILED'", broken.output)
    assert failed, broken.output[-3000:]
    assert len(set(failed)) == 2, failed  # the profile's one retry, failed as well
    states = dict(squeue(cluster, "%i", "%T"))
    assert all(states[job] == "FAILED" for job in failed), (failed, states)
    # generate_world went through and nothing after prepare_data was submitted
    rules = [broken.jobs[jobid]["rule"] for jobid, _, _ in submissions(broken.output)]
    assert set(rules) == {"generate_world", "prepare_data"}, rules
