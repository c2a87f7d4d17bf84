"""How long the engines take to decide there is nothing to do, for the whole DAG.

    python benchmarks/dag_overhead.py

In a temporary clone at `smoke` scale: one full `dvc repro` (untimed set-up), then the
no-op `dvc repro`, `dvc status` and `snakemake -n` (planning every rule from dvc.yaml
through DVC's resolver), each repeated; prints the median and the spread in seconds.
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
        repo = clone_worktree(Path(tmp) / "repo")
        for paper in sorted(p.stem for p in (repo / "params").glob("*.yaml")):
            set_param(repo, paper, "scale", "smoke")
        t = time.perf_counter()
        run("dvc repro", cwd=repo)
        print(f"set-up: smoke-scale dvc repro of the whole DAG took {time.perf_counter() - t:.1f} s")
        n_stages = len(run("dvc stage list --all", cwd=repo).stdout.splitlines())
        for label, cmd in (("dvc repro (no-op)", "dvc repro"), ("dvc status", "dvc status"),
                           ("snakemake -n", "snakemake -n")):
            times = [timed(cmd, repo) for _ in range(REPEAT)]
            print(f"{label:20s} {statistics.median(times):6.2f} s median "
                  f"(min {min(times):.2f}, max {max(times):.2f}; {REPEAT} runs, {n_stages} stages)")
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
