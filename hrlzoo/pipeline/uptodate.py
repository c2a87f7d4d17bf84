"""`make repro`'s no-op fast path: "nothing to run" without asking DVC again when nothing DVC
looks at has changed since DVC last said so.

DVC's own no-op check costs about 35 ms per stage (benchmarks/dag_overhead.py: it parses each
stage's params file again, edits `.dvc/tmp/rwlock` twice, and stats and looks up every output
in its state database), so at 150 stages a no-op `dvc repro` takes seconds. After a full plan in
which DVC found every chosen stage up to date, `record()` writes `.dvc/tmp/hrlzoo-up-to-date.json`:
the targets, and the (mtime_ns, size, inode) of every file DVC's verdict depends on: dvc.yaml,
dvc.lock, .dvcignore, .dvc/config, every params file, every dependency and output of the chosen
stages (folders walked file by file, as DVC hashes them) and of `params_check` (the schemas
`python -m hrlzoo.pipeline.check` reads), and the `.partial` leftovers that are absent. That is
the signature DVC's own state database trusts to reuse a file's hash. `unchanged()` re-reads
those stats; any difference (a file edited, added, removed, touched) sends the run through the
full plan.

Racy writes: a file changed within the filesystem's timestamp granularity of the moment it was
recorded could keep its mtime; `record()` therefore writes nothing while any recorded file is
younger than RACY_S seconds (the next no-op run records it), as git does for its index.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
from pathlib import Path

FILE = Path(".dvc/tmp/hrlzoo-up-to-date.json")
RACY_S = 2.0
ALWAYS = ("dvc.yaml", "dvc.lock", ".dvcignore", ".dvc/config", ".dvc/config.local", "params")


def _ignored_names(root: Path) -> tuple[list[str], list[str]] | None:
    """(file patterns, folder patterns) of .dvcignore that match a bare name, or None when the
    file has a rule this reading does not cover (a negation): then nothing is skipped (a file
    DVC ignores can only cost a needless full plan, never hide a change)."""
    path = root / ".dvcignore"
    names, dirs = [], []
    if not path.exists():
        return names, dirs
    for line in path.read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        if rule.startswith("!"):
            return None
        if "/" in rule.rstrip("/"):
            continue  # a path rule: not skipped here (conservative)
        (dirs if rule.endswith("/") else names).append(rule.rstrip("/"))
    return names, dirs


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def signature(root: Path, paths: list[str]) -> dict[str, list[int] | None]:
    """{relative path: [mtime_ns, size, inode] or None when absent} of every path, folders
    walked file by file (what .dvcignore names skipped)."""
    ignored = _ignored_names(root)
    names, dirs = ignored if ignored is not None else ([], [])
    sig: dict[str, list[int] | None] = {}
    for rel in sorted(set(paths)):
        p = root / rel
        if p.is_dir() and not p.is_symlink():
            for base, subdirs, files in os.walk(p):
                subdirs[:] = sorted(d for d in subdirs if not any(fnmatch.fnmatch(d, g) for g in dirs + names))
                for f in sorted(files):
                    if any(fnmatch.fnmatch(f, g) for g in names):
                        continue
                    q = Path(base) / f
                    sig[str(q.relative_to(root))] = _stat(q)
            sig[rel + "/"] = [0, 0, 0]  # present as a folder
        elif p.exists() or p.is_symlink():
            sig[rel] = _stat(p)
        else:
            sig[rel] = None
    return sig


def key(targets: list[str], single: list[str]) -> dict:
    try:
        from importlib.metadata import version

        dvc = version("dvc")
    except Exception:
        dvc = "?"
    return {"targets": list(targets), "single": list(single), "dvc": dvc, "python": sys.executable}


def paths_of(specs: dict, chosen: list[str]) -> list[str]:
    """What DVC's verdict on the `chosen` stages and the params check depend on."""
    from hrlzoo.pipeline.dag import CHECK_MARKER
    from hrlzoo.pipeline.stage import partial_path

    names = set(chosen) | {n for n, s in specs.items() if list(s.outs) == [CHECK_MARKER]}
    paths = list(ALWAYS)
    for name in names:
        s = specs[name]
        paths += list(s.deps) + list(s.param_values) + list(s.outs)
        paths += [str(partial_path(o)) for o in s.outs]
    return paths


def unchanged(root: Path, k: dict) -> int | None:
    """The number of stages DVC last found up to date for these targets, if nothing it looks at
    has changed since; else None."""
    try:
        data = json.loads((root / FILE).read_text())
        if data["key"] != k:
            return None
        if signature(root, list(data["paths"])) != data["signature"]:
            return None
        return int(data["stages"])
    except Exception:  # absent, unreadable, another format: ask DVC
        return None


def record(root: Path, k: dict, paths: list[str], before: dict, stages: int) -> bool:
    """Write the stamp when the signature taken before DVC's plan still holds after it and no
    recorded file is within the racy window; True when written."""
    after = signature(root, paths)
    if after != before:
        return False
    newest = max((v[0] for v in after.values() if v and v[0]), default=0)
    if newest > time.time_ns() - int(RACY_S * 1e9):
        return False
    out = root / FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps({"key": k, "stages": stages, "paths": sorted(set(paths)), "signature": after}))
    tmp.replace(out)
    return True


def forget(root: Path) -> None:
    (root / FILE).unlink(missing_ok=True)
