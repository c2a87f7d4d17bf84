"""Every stage's wall time, recorded by the stage itself after each successful run, per scale:
`reports/timings.json` (committed, so a fresh clone knows what a rebuild costs).

    {"cpu": {"python -m stages.heron.train pendulum heron": 231.4, ...}, "smoke": {...}}

Keys are the stage's command line as dvc.yaml resolves it, so every engine (DVC, Snakemake,
`make repro`) and any machine share one record; each run replaces its stage's entry. The time
is the stage process's whole life (imports included): what a rebuild waits for. `make repro` reads it to
print what it will run and for how long (`hrlzoo.pipeline.repro`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path

FILE = Path("reports") / "timings.json"
ANY = "any"  # the scale of a stage without params (params_check, summary)


def command_line(argv: list[str] | None = None) -> str | None:
    """`python -m <module> <args>` of the running stage, or None when it was not started with -m."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is None or not spec.name.startswith("stages."):
        return None
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", "-m", spec.name, *args])


def normalise(cmd: str) -> str:
    return " ".join(cmd.split())


def load(root: str | os.PathLike = ".") -> dict[str, dict[str, float]]:
    path = Path(root) / FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {}


def record(cmd: str | None, scale: str, seconds: float, root: str | os.PathLike = ".") -> None:
    """Replace the entry of `cmd` at `scale` (under a lock: stages finish side by side)."""
    if cmd is None:
        return
    path = Path(root) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(root)
        data.setdefault(scale, {})[normalise(cmd)] = round(seconds, 1)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({s: dict(sorted(v.items())) for s, v in sorted(data.items())}, indent=1) + "\n")
        os.replace(tmp, path)


def prune(commands, root: str | os.PathLike = ".") -> int:
    """Drop the entries of commands no stage runs any more (a renamed stage, a changed
    argument list): `make repro` calls it with dvc.yaml's resolved commands before it runs
    anything. Returns how many entries it dropped."""
    path = Path(root) / FILE
    if not path.exists():
        return 0
    keep = {normalise(c) for c in commands}
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(root)
        pruned = {s: {c: t for c, t in v.items() if c in keep} for s, v in data.items()}
        dropped = sum(len(v) for v in data.values()) - sum(len(v) for v in pruned.values())
        if dropped:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps({s: dict(sorted(v.items())) for s, v in sorted(pruned.items()) if v},
                                      indent=1) + "\n")
            os.replace(tmp, path)
    return dropped


def expected(cmd: str, scale: str, data: dict | None = None) -> float | None:
    """The recorded wall time of `cmd` at `scale`, or None."""
    data = load() if data is None else data
    return data.get(scale, {}).get(normalise(cmd))
