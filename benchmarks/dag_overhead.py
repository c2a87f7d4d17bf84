"""The engines' own cost: a whole `smoke`-scale rebuild with each engine, and the time they
take to decide there is nothing to do.

    python benchmarks/dag_overhead.py

In two temporary clones at `smoke` scale: a full `dvc repro` and a full
`snakemake --cores 2` (timed once each), then, in the first, the no-op `dvc repro`,
`dvc status` and `snakemake -n` (planning every rule from dvc.yaml through DVC's resolver),
each repeated; prints the median and the spread in seconds.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import clone_worktree, env_with_venv, run, set_param  # noqa: E402

REPEAT = 5


def timed(cmd: str, cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, shell=True, env=env_with_venv(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repos = [clone_worktree(Path(tmp) / name) for name in ("dvc", "snakemake")]
        for repo in repos:
            for paper in sorted(p.stem for p in (repo / "params").glob("*.yaml")):
                set_param(repo, paper, "scale", "smoke")
        for repo, cmd in zip(repos, ("dvc repro", "snakemake --cores 2")):
            t = time.perf_counter()
            run(cmd, cwd=repo)
            print(f"whole DAG at smoke scale: {cmd:20s} {time.perf_counter() - t:6.1f} s")
        repo = repos[0]
        n_stages = len(run("dvc stage list --all", cwd=repo).stdout.splitlines())
        for label, cmd in (("dvc repro (no-op)", "dvc repro"), ("dvc status", "dvc status"),
                           ("snakemake -n", "snakemake -n")):
            times = [timed(cmd, repo) for _ in range(REPEAT)]
            print(f"{label:20s} {statistics.median(times):6.2f} s median "
                  f"(min {min(times):.2f}, max {max(times):.2f}; {REPEAT} runs, {n_stages} stages)")
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
