"""The pipeline as DVC resolves it, in the terms a Snakefile needs.

`dvc.yaml` is the only declaration; `dvc_stages(root)` asks DVC itself for the expanded
stages (`Repo(root).index.stages`) so the Snakefile never re-implements `foreach`, `matrix`
or `${}` interpolation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CHECK_MARKER = "data/params.ok"  # the output of dvc.yaml's `params_check`, a dependency of every stage

@dataclass
class StageSpec:
    name: str  # DVC's address, e.g. "heron_train_prefs@pendulum-heron"
    cmd: str
    deps: list[str]  # paths (files or folders), params files excluded
    outs: list[str]  # every output: outs, metrics and plots
    param_values: dict = field(default_factory=dict)  # {"params/x.yaml": {"key": value}}
    threads: int = 1
    resources: dict = field(default_factory=dict)  # mem_mb, runtime (minutes), gpu
    priority: int = 0  # Snakemake runs ready jobs of higher priority first (long chains first)

    @property
    def rule(self) -> str:
        """A Snakemake rule name: DVC's address with every non-identifier character as `_`."""
        return re.sub(r"\W", "_", self.name.replace("@", "__"))


def _param_values(dep, files: dict) -> dict:
    """The current values of the params a stage declares (all keys when none are listed),
    as DVC reads them (a dotted key is a path into the file). `files` caches each parsed file:
    DVC itself parses a params file once per stage that tracks it, which at 150 stages was
    half of the Snakefile's start-up (benchmarks/dag_overhead.py)."""
    import yaml

    path = dep.def_path
    if path not in files:
        try:
            text = (Path(dep.repo.root_dir) / path).read_text()
            files[path] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except Exception:  # a missing or broken params file: DVC reports it; keep the DAG readable
            files[path] = {}
    data = files[path]
    if not dep.params:
        return {k: data[k] for k in sorted(data)}
    values = {}
    for key in dep.params:
        node, found = data, True
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                found = False
                break
        if found:
            values[key] = node
    return {k: values[k] for k in sorted(values)}


def address(stage, root: Path) -> str:
    """DVC's stage address relative to the repository root, whatever the current directory
    (DVC's own `addressing` is relative to the cwd: `../x/dvc.yaml:name` from elsewhere)."""
    dvcfile = Path(stage.path).resolve().relative_to(root)
    return stage.name if dvcfile == Path("dvc.yaml") else f"{dvcfile}:{stage.name}"


def dvc_stages(root: str | Path = ".") -> list[StageSpec]:
    """The stages of the root dvc.yaml, resolved by DVC (its own loader, without dvc.lock,
    which a DAG does not need)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.dvcfile import ProjectFile
    from dvc.repo import Repo
    from dvc.stage.loader import StageLoader

    root = Path(root).resolve()
    specs: list[StageSpec] = []
    files: dict = {}
    with Repo(str(root)) as repo:
        dvcfile = ProjectFile(repo, str(root / "dvc.yaml"))
        loader = StageLoader(dvcfile, dvcfile.contents, {})
        stages = [loader[name] for name in loader]
        for st in stages:
            if not getattr(st, "cmd", None):
                continue
            deps, params = [], {}
            for d in st.deps:
                if isinstance(d, ParamsDependency):
                    params[d.def_path] = _param_values(d, files)
                else:
                    deps.append(d.def_path)
            meta = (st.meta or {}).get("snakemake", {}) or {}
            resources = {k: meta[k] for k in ("mem_mb", "runtime") if k in meta}
            if meta.get("gpu"):
                resources["gpu"] = int(meta["gpu"])
            specs.append(StageSpec(
                name=address(st, root),
                cmd=st.cmd if isinstance(st.cmd, str) else " && ".join(st.cmd),
                deps=deps,
                outs=[o.def_path for o in st.outs],
                param_values=params,
                threads=int(meta.get("threads", 1)),
                resources=resources,
                priority=int(meta.get("priority", 0)),
            ))
    return specs


def dvc_edges(root: str | Path = ".") -> set[tuple[str, str]]:
    """(upstream, downstream) stage addresses of DVC's own graph."""
    from dvc.repo import Repo

    root = Path(root).resolve()
    with Repo(str(root)) as repo:
        # networkx edges point from a stage to the stages it depends on
        return {(address(b, root), address(a, root)) for a, b in repo.index.graph.edges}


def producer_of(path: str | Path, root: str | Path = ".") -> tuple[str, str] | None:
    """(output, stage) of the DVC stage whose output is `path` or holds it, or None."""
    root = Path(root).resolve()
    if not (root / "dvc.yaml").exists():
        return None
    path = Path(path)
    for spec in dvc_stages(root):
        for out in spec.outs:
            if path == Path(out) or Path(out) in path.parents:
                return out, spec.name
    return None
