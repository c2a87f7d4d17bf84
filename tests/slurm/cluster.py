"""Python side of tests/slurm/cluster.sh: a real single-node SLURM cluster for tests.

    from tests.slurm.cluster import slurm_cluster   # or load this file by path

    with slurm_cluster(tmp_path) as c:
        env = {**os.environ, **c["env"]}             # SLURM_CONF=... for sbatch/sacct/snakemake
        subprocess.run(["srun", "-N1", "hostname"], env=env, check=True)
        # snakemake --executor slurm --default-resources slurm_partition=<c["partition"]>
        #           slurm_account=<c["account"]> ...

The context manager runs `cluster.sh install` (a no-op when the Debian packages are
already there), `cluster.sh start DIR`, yields the cluster description, and always runs
`cluster.sh stop DIR` (which kills exactly the daemons it started and waits for them).
Needs root (Debian packages, daemons run as root). See README.md next to this file.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "cluster.sh"
# unix-socket paths (munge, mysqld) live under DIR/run; keep DIR short
MAX_DIR_LEN = 80


class SlurmClusterError(RuntimeError):
    pass


def can_run_cluster() -> tuple[bool, str]:
    """(ok, reason): whether this machine can host the test cluster at all."""
    if os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False, "needs root"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return False, "needs Debian (apt-get) or preinstalled slurm-wlm"
    return True, ""


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], text=True, capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def install(timeout: float = 900) -> None:
    """apt-get install the packages (skipped when already installed)."""
    res = _run(["install"], timeout)
    if res.returncode != 0:
        raise SlurmClusterError(f"cluster.sh install failed ({res.returncode}):\n"
                                f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")


def _parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier() and key.isupper():
            env[key] = value
    return env


@contextlib.contextmanager
def slurm_cluster(tmpdir: str | os.PathLike, *, do_install: bool = True,
                  start_timeout: float = 300, stop_timeout: float = 180) -> Iterator[dict]:
    """Start a private SLURM cluster with state under `tmpdir`/slurm and yield

        {"env": {"SLURM_CONF": ..., ...},   # vars a client (sbatch, sacct, snakemake) needs
         "partition": "debug", "account": "hrlzoo", "cluster": "snaketest",
         "dir": "/path/to/cluster/dir", "conf": "/path/to/slurm.conf"}

    Only one cluster at a time per machine: start links /etc/slurm/slurm.conf to it (the
    snakemake jobstep plugin drops SLURM_CONF inside jobs, see README.md).
    """
    ok, why = can_run_cluster()
    if not ok:
        raise SlurmClusterError(f"cannot run a SLURM test cluster here: {why}")
    if do_install:
        install()
    base = Path(tmpdir).resolve() / "slurm"
    made_short = None
    if len(str(base)) > MAX_DIR_LEN:
        made_short = tempfile.mkdtemp(prefix="slurm-", dir="/tmp")
        base = Path(made_short)
    base.mkdir(parents=True, exist_ok=True)
    started = False
    try:
        res = _run(["start", str(base)], start_timeout)
        started = True  # even a failed start may have left pids: stop handles both
        if res.returncode != 0:
            raise SlurmClusterError(f"cluster.sh start failed ({res.returncode}):\n"
                                    f"{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
        env = _parse_env(res.stdout)
        if "SLURM_CONF" not in env:
            raise SlurmClusterError(f"cluster.sh start printed no SLURM_CONF:\n{res.stdout}")
        yield {
            "env": {"SLURM_CONF": env["SLURM_CONF"]},
            "partition": env.get("SLURM_PARTITION", "debug"),
            "account": env.get("SLURM_ACCOUNT", "hrlzoo"),
            "cluster": env.get("SLURM_CLUSTER", "snaketest"),
            "dir": env.get("SLURM_TEST_DIR", str(base)),
            "conf": env["SLURM_CONF"],
        }
    finally:
        if started:
            res = _run(["stop", str(base)], stop_timeout)
            if res.returncode != 0:
                msg = f"cluster.sh stop failed ({res.returncode}):\n{res.stderr[-3000:]}"
                if sys.exc_info()[0] is None:
                    raise SlurmClusterError(msg)
                print(msg, file=sys.stderr)  # don't mask the exception in flight
        if made_short:
            shutil.rmtree(made_short, ignore_errors=True)
