"""Smoke test of the local SLURM test cluster (tests/slurm/cluster.sh) with a real
Snakemake run through snakemake-executor-plugin-slurm. Needs root; installs the Debian
packages on first use (~20-60 s), starts the cluster (~6 s), runs a 3-job workflow (~45 s).
"""
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("slurm_test_cluster", Path(__file__).with_name("cluster.py"))
cluster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster)

pytestmark = pytest.mark.slurm

_ok, _why = cluster.can_run_cluster()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if not _ok:
        pytest.skip(_why)
    with cluster.slurm_cluster(tmp_path_factory.mktemp("cl")) as c:
        c["full_env"] = {**os.environ, **c["env"]}
        yield c


def sh(cmd, env, cwd=None, timeout=120):
    return subprocess.run(cmd, env=env, cwd=cwd, text=True, capture_output=True, timeout=timeout)


def test_srun_hostname(slurm):
    res = sh(["srun", "-N1", "hostname"], slurm["full_env"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == os.uname().nodename.split(".")[0]


@pytest.mark.parametrize("flag,ok", [("--gres=gpu:1", True), ("--gpus=1", True),
                                     ("--gres=gpu:fake:1", True), ("--gres=gpu:2", False)])
def test_fake_gpu_gres(slurm, flag, ok):
    res = sh(["sbatch", "--test-only", flag, "-p", slurm["partition"], "-A", slurm["account"],
              "--wrap", "hostname"], slurm["full_env"])
    assert (res.returncode == 0) == ok, res.stderr
    if ok:
        assert "to start at" in res.stderr


def test_snakemake_slurm_executor(slurm, tmp_path):
    wf = tmp_path / "wf"
    (wf / "profile").mkdir(parents=True)
    (wf / "Snakefile").write_text(textwrap.dedent("""\
        rule all:
            input: "b.txt", "c.txt"
        rule a:
            output: "a.txt"
            shell: "echo $SLURM_JOB_ID > {output}"
        rule b:
            input: "a.txt"
            output: "b.txt"
            threads: 2
            resources: mem_mb=200, runtime=3
            shell: "cat {input} > {output}; nproc >> {output}"
        rule c:
            input: "a.txt"
            output: "c.txt"
            resources: gpu=1
            shell: "echo CUDA=$CUDA_VISIBLE_DEVICES > {output}"
        """))
    (wf / "profile" / "config.yaml").write_text(textwrap.dedent(f"""\
        executor: slurm
        jobs: 2
        latency-wait: 5
        default-resources:
          slurm_partition: "{slurm['partition']}"
          slurm_account: "{slurm['account']}"
          runtime: 5
          mem_mb: 100
        slurm-init-seconds-before-status-checks: 2
        """))
    res = sh([sys.executable, "-m", "snakemake", "--workflow-profile", "profile", "--verbose"],
             slurm["full_env"], cwd=wf, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    log = res.stdout + res.stderr
    calls = [line for line in log.splitlines() if line.startswith("sbatch call:")]
    assert len(calls) == 3, calls
    b_call = next(c for c in calls if "--comment rule_b" in c)
    assert "--cpus-per-task=2" in b_call and "--mem 200" in b_call and "-t 3" in b_call
    assert "--gpus=1" in next(c for c in calls if "--comment rule_c" in c)
    assert (wf / "b.txt").read_text().split()[-1] == "2"       # 2 CPUs given to the step
    assert (wf / "c.txt").read_text().strip() == "CUDA=0"        # the fake GPU was bound
    # the jobs are in the accounting database
    jobname = next(c for c in calls).split("--job-name ")[1].split()[0]
    acct = sh(["sacct", "-X", "-n", "-P", "--name", jobname, "--format=JobIdRaw,State,Account,Partition"],
              slurm["full_env"])
    rows = [r.split("|") for r in acct.stdout.split()]
    assert len(rows) == 3 and all(r[1] == "COMPLETED" and r[2] == slurm["account"] for r in rows), acct
