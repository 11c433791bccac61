"""The test cluster's claim on /etc/slurm/slurm.conf, checked on links in a temporary folder.

A run of tests/test_slurm.py that is killed leaves its link and its folder
behind; the next run must take the path over, and must never take it from a
Slurm that is running (this machine's own, or another run of the test).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from slurm.cluster import stale_system_conf, system_conf_taken


def cluster_folder(tmp_path: Path, pid: int | str | None) -> Path:
    """A folder laid out as SlurmCluster writes it, with `pid` in its slurmctld pid file."""
    root = tmp_path / "slurm-abc123"
    (root / "run").mkdir(parents=True)
    (root / "slurm.conf").write_text("ClusterName=saldissect\n")
    if pid is not None:
        (root / "run" / "slurmctld.pid").write_text(f"{pid}\n")
    return root


def link(tmp_path: Path, target: Path) -> Path:
    conf = tmp_path / "etc" / "slurm.conf"
    conf.parent.mkdir()
    conf.symlink_to(target)
    return conf


def test_no_conf_is_free(tmp_path):
    assert not system_conf_taken(tmp_path / "slurm.conf")


def test_a_machines_own_conf_is_taken(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=site\n")
    assert system_conf_taken(conf)
    assert not stale_system_conf(conf)


def test_a_link_to_another_folder_is_taken(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "slurm.conf").write_text("ClusterName=site\n")
    assert system_conf_taken(link(tmp_path, tmp_path / "site" / "slurm.conf"))


def test_a_dangling_link_of_ours_is_stale(tmp_path):
    root = cluster_folder(tmp_path, None)
    conf = link(tmp_path, root / "slurm.conf")
    shutil.rmtree(root)
    assert stale_system_conf(conf)
    assert not system_conf_taken(conf)


@pytest.mark.parametrize("pid", [None, "not a pid", 2**22 + 1])
def test_a_link_of_ours_whose_controller_is_gone_is_stale(tmp_path, pid):
    """The folder is still there (the killed run could not clean up), its slurmctld is not."""
    conf = link(tmp_path, cluster_folder(tmp_path, pid) / "slurm.conf")
    assert stale_system_conf(conf)
    assert not system_conf_taken(conf)


def test_a_pid_reused_by_another_program_is_stale(tmp_path):
    with subprocess.Popen(["sleep", "30"]) as other:
        try:
            conf = link(tmp_path, cluster_folder(tmp_path, other.pid) / "slurm.conf")
            assert stale_system_conf(conf)
        finally:
            other.kill()


def test_a_link_of_ours_whose_controller_runs_is_taken(tmp_path):
    """Another run of the test, still going: its link must be left alone."""
    controller = tmp_path / "bin" / "slurmctld"  # a process whose name is slurmctld
    controller.parent.mkdir()
    shutil.copy(shutil.which("sleep"), controller)
    with subprocess.Popen([str(controller), "30"]) as process:
        try:
            comm = Path(f"/proc/{process.pid}/comm")
            deadline = time.monotonic() + 10
            while comm.read_text().strip() != "slurmctld" and time.monotonic() < deadline:
                time.sleep(0.05)  # a loaded machine may not have run the exec yet
            assert comm.read_text().strip() == "slurmctld", comm.read_text()
            conf = link(tmp_path, cluster_folder(tmp_path, process.pid) / "slurm.conf")
            assert not stale_system_conf(conf)
            assert system_conf_taken(conf)
        finally:
            process.kill()
