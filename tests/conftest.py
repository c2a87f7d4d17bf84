import atexit
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: python, dvc, snakemake


def env_with_venv() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(cmd, cwd, check=True, timeout=900):
    """Run a shell command with the venv on PATH; return the CompletedProcess."""
    res = subprocess.run(cmd, cwd=cwd, shell=True, env=env_with_venv(), text=True,
                         capture_output=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"`{cmd}` exited {res.returncode}\n--- stdout\n{res.stdout[-4000:]}"
                             f"\n--- stderr\n{res.stderr[-4000:]}")
    return res


_SNAPSHOT: list[Path] = []


def _snapshot() -> Path:
    """The working tree (committed or not) as it was at the first clone of this process, so
    that every clone of one test run sees the same files even if the tree changes meanwhile."""
    if not _SNAPSHOT:
        ignore = shutil.ignore_patterns(".venv", "data", ".snakemake", "__pycache__", ".pytest_cache",
                                        ".hypothesis", "*.partial", ".git", "logs", "*.egg-info")
        dst = Path(tempfile.mkdtemp(prefix="hrlzoo-snapshot-")) / "tree"
        shutil.copytree(ROOT, dst, ignore=ignore)
        for sub in ("tmp", "cache"):
            shutil.rmtree(dst / ".dvc" / sub, ignore_errors=True)
        atexit.register(shutil.rmtree, dst.parent, True)
        _SNAPSHOT.append(dst)
    return _SNAPSHOT[0]


def clone_worktree(dst: Path) -> Path:
    """A fresh git repository holding the working tree (committed and not): what a clean
    clone of this state would be, without data/ or caches."""
    shutil.copytree(_snapshot(), dst)
    run("git init -q -b main && git add -A && git -c user.name=test -c user.email=test@example.com "
        "commit -q -m snapshot", cwd=dst)
    return dst


def smoke_everywhere(repo: Path) -> None:
    """Every paper of `repo` at `scale: smoke`."""
    for params in sorted((repo / "params").glob("*.yaml")):
        set_param(repo, params.stem, "scale", "smoke")


@contextlib.contextmanager
def smoke_workdir(tmp: Path, paper: str):
    """`tmp` as the working directory of `paper`'s stages run in-process at `scale: smoke`: its
    params/<paper>.yaml (scale switched from cpu) and stages/<paper>/claims.yaml copied from this
    tree. Yields the params text; the old working directory comes back after."""
    text = (ROOT / "params" / f"{paper}.yaml").read_text()
    smoke, n = re.subn(r"^scale: cpu\b", "scale: smoke", text, count=1, flags=re.M)
    assert n == 1, f"params/{paper}.yaml: no top-level `scale: cpu` line"
    (tmp / "params").mkdir(parents=True, exist_ok=True)
    (tmp / "params" / f"{paper}.yaml").write_text(smoke)
    (tmp / "stages" / paper).mkdir(parents=True, exist_ok=True)
    (tmp / "stages" / paper / "claims.yaml").write_bytes((ROOT / "stages" / paper / "claims.yaml").read_bytes())
    old = os.getcwd()
    os.chdir(tmp)
    try:
        yield text
    finally:
        os.chdir(old)


def smoke_train_and_report(paper: str, methods: list[str], train, report) -> tuple[bytes, bytes]:
    """Inside `smoke_workdir`: the first method's `train` stage twice (its eval.parquet's bytes
    each time, for a determinism check), the other methods once, then the `report` stage."""
    path = Path("data") / paper / "runs" / methods[0] / "eval.parquet"
    runs = []
    for _ in range(2):
        assert train.main([methods[0]]) == 0
        runs.append(path.read_bytes())
    for m in methods[1:]:
        assert train.main([m]) == 0
    assert report.main([]) == 0
    return runs[0], runs[1]


def set_param(repo: Path, paper: str, key: str, value: str) -> None:
    """Rewrite a top-level `key: value` line of params/<paper>.yaml, keeping its comment."""
    p = repo / "params" / f"{paper}.yaml"
    p.write_text(re.sub(rf"^{key}:\s*[^#\n]*", f"{key}: {value}  ", p.read_text(), count=1, flags=re.M))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests run tiny networks in-process: extra intra-op threads only add contention."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
