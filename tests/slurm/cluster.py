"""A throw-away single-node Slurm cluster on this machine, for tests.

Everything lives in one temporary directory: its own munge key and socket,
slurm.conf, gres.conf (fake GPUs: empty files), state and spool folders, logs.
The daemons (munged, slurmctld, slurmd) run in the foreground as children of
this process and are stopped by their PIDs. They talk over 127.0.0.1 and, when
the host name resolves to loopback (as in a container), listen only there;
they accept nothing but munge credentials made with this cluster's random key.
The node declares the CPUs, memory (at least 64 GB, so that the rules' real
memory requests fit) and fake GPUs it is given, not what it has.

One thing outside the directory: the executor plugin's job step drops every
SLURM_* variable (SLURM_CONF with them) before it calls srun, so srun inside a
job reads the default /etc/slurm/slurm.conf. `start()` links that path to the
directory's slurm.conf when it is free, and `stop()` removes only that link;
a machine that already has its own /etc/slurm/slurm.conf is refused (a
link left by a killed run of this script, whose daemons are gone, is replaced).

Needs root (slurmd starts jobs as their user) and the Debian packages
`slurmctld slurmd slurm-client munge`. By hand:

    python tests/slurm/cluster.py      # brings a cluster up, prints its env, Ctrl-C stops it
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")

SLURM_CONF = """\
# Written by tests/slurm/cluster.py: one node, loopback only, no accounting daemon.
ClusterName=saldissect
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in a container: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# The node is declared as configured, not as probed (memory may be overstated).
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to squeue this long (the plugin's status check).
MinJobAge={min_job_age}
KillWait=5
{communication}InactiveLimit=0
SlurmdTimeout=60
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:{gpus} State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""

GRES_CONF = "NodeName={node} Name=gpu File={root}/dev/gpu[0-{last}]\n"


def find_program(name: str) -> str | None:
    """A program on PATH or in the sbin folders (daemons live there, often off a user's PATH)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def missing_programs() -> list[str]:
    """Programs the cluster needs that are not installed."""
    return [name for name in (*DAEMONS, *CLIENTS) if find_program(name) is None]


def running(pid_file: Path, name: str) -> bool:
    """The PID in `pid_file` is a live process called `name` (not a PID reused by another)."""
    try:
        pid = int(pid_file.read_text().split()[0])
        return Path(f"/proc/{pid}/comm").read_text().strip() == name
    except (OSError, ValueError, IndexError):
        return False


def stale_system_conf(conf: Path = SYSTEM_CONF) -> bool:
    """`conf` is a link left by a cluster of ours that was killed.

    Ours: a link to `slurm.conf` in a `slurm-*` folder. Killed: its target is gone,
    or its slurmctld no longer runs (a killed test leaves its folder behind, so
    the link need not dangle; a machine restored from such a state has the same).
    """
    if not conf.is_symlink():
        return False
    target = Path(os.readlink(conf))
    if target.name != "slurm.conf" or not target.parent.name.startswith("slurm-"):
        return False
    return not target.exists() or not running(target.parent / "run" / "slurmctld.pid", "slurmctld")


def system_conf_taken(conf: Path = SYSTEM_CONF) -> bool:
    """Another Slurm owns `conf` (a stale link of ours does not count)."""
    return (conf.exists() or conf.is_symlink()) and not stale_system_conf(conf)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmError(RuntimeError):
    pass


class SlurmCluster:
    """munged + slurmctld + slurmd in `root`; use as a context manager or start()/stop()."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        cpus: int | None = None,
        memory_mb: int | None = None,
        gpus: int = 2,
        partition: str = "debug",
        min_job_age: int = 3600,
    ):
        self.root = Path(root or tempfile.mkdtemp(prefix="slurm-"))
        self.own_root = root is None
        self.node = socket.gethostname().split(".")[0]
        try:
            self.loopback = socket.gethostbyname(self.node).startswith("127.")
        except OSError:
            self.loopback = False
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb or max(physical_memory_mb(), 65536)
        self.gpus = gpus
        self.partition = partition
        self.min_job_age = min_job_age
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge-run" / "munge.socket.2"
        self.processes: dict[str, subprocess.Popen] = {}
        self.linked_system_conf = False

    # -- environment -------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """This process's environment pointed at the cluster (SLURM_CONF)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
        env["SLURM_CONF"] = str(self.conf)
        return env

    def run(self, *command: str, check: bool = True, timeout: float = 30):
        result = subprocess.run(
            [find_program(command[0]) or command[0], *command[1:]],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise SlurmError(f"{' '.join(command)}: {result.stderr.strip()}")
        return result

    # -- lifecycle -----------------------------------------------------------
    def write_config(self) -> None:
        for sub, mode in (
            ("munge-etc", 0o700),
            ("munge-run", 0o755),
            ("munge-lib", 0o700),
            ("state", 0o755),
            ("spool", 0o755),
            ("run", 0o755),
            ("log", 0o755),
            ("dev", 0o755),
        ):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            (self.root / sub).chmod(mode)
        self.root.chmod(0o755)
        key = self.root / "munge-etc" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        for i in range(self.gpus):
            (self.root / "dev" / f"gpu{i}").touch()
        self.conf.write_text(
            SLURM_CONF.format(
                node=self.node,
                ctld_port=free_port(),
                slurmd_port=free_port(),
                munge_socket=self.munge_socket,
                root=self.root,
                cpus=self.cpus,
                memory_mb=self.memory_mb,
                gpus=self.gpus,
                partition=self.partition,
                min_job_age=self.min_job_age,
                communication=(
                    # bind to the node's address (loopback here) instead of all addresses
                    "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny\n" if self.loopback else ""
                ),
            )
        )
        (self.root / "gres.conf").write_text(
            GRES_CONF.format(node=self.node, root=self.root, last=self.gpus - 1)
        )

    def start(self, timeout: float = 60) -> SlurmCluster:
        missing = missing_programs()
        if missing:
            raise SlurmError(f"not installed: {', '.join(missing)}")
        if system_conf_taken():
            raise SlurmError(
                f"{SYSTEM_CONF} exists: this machine has its own Slurm; refusing to replace it"
            )
        if stale_system_conf():
            SYSTEM_CONF.unlink()
        self.write_config()
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self.linked_system_conf = True
        try:
            self._spawn(
                "munged",
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={self.root / 'munge-etc' / 'munge.key'}",
                f"--pid-file={self.root / 'munge-run' / 'munged.pid'}",
                f"--seed-file={self.root / 'munge-lib' / 'munged.seed'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
            )
            self._wait(lambda: self.munge_socket.exists(), "munged socket", timeout)
            self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
            self._wait(self._controller_up, "slurmctld", timeout)
            self._spawn("slurmd", "-D", "-f", str(self.conf))
            self._wait(self._node_idle, f"node {self.node} idle", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15) -> None:
        """Cancel what is left, then stop slurmd, slurmctld, munged by PID; unlink the conf."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--full", f"--partition={self.partition}", check=False)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for name in reversed(DAEMONS):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self.linked_system_conf:
            if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == self.conf:
                SYSTEM_CONF.unlink()
            self.linked_system_conf = False
        for handle in getattr(self, "_logs", []):
            handle.close()

    def cleanup(self) -> None:
        self.stop()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- helpers -------------------------------------------------------------
    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self._logs = [*getattr(self, "_logs", []), log]
        self.processes[name] = subprocess.Popen(
            [find_program(name), *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise SlurmError(f"{name} exited ({process.returncode}); {self.log_tail(name)}")
            if ready():
                return
            time.sleep(0.5)
        raise SlurmError(f"{what} not ready after {timeout:.0f} s; {self.log_tail()}")

    def _controller_up(self) -> bool:
        try:
            return self.run("scontrol", "ping", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _node_idle(self) -> bool:
        try:
            out = self.run("sinfo", "-h", "-N", "-o", "%t", check=False, timeout=10).stdout
        except subprocess.TimeoutExpired:
            return False
        return out.strip() == "idle"

    def log_tail(self, *names: str, lines: int = 20) -> str:
        """The last lines of the daemons' logs, for error messages."""
        parts = []
        for log in sorted((self.root / "log").glob("*")):
            if names and not any(log.name.startswith(n) for n in names):
                continue
            text = log.read_text(errors="replace").splitlines()[-lines:]
            if text:
                parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts) or "(no daemon logs)"


def physical_memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


if __name__ == "__main__":
    with SlurmCluster() as cluster:
        print(f"export SLURM_CONF={cluster.conf}")
        print(cluster.run("sinfo").stdout)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
