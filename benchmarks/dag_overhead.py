"""The engines' own cost: a whole `smoke`-scale rebuild with each way to run it, and the time
they take to decide there is nothing to do, on the real DAG and on a generated one of 150
stages (where the DAG is going as papers are added).

    python benchmarks/dag_overhead.py                 # both parts
    python benchmarks/dag_overhead.py --no-rebuild    # the no-op timings only (a minute)
    python benchmarks/dag_overhead.py --stages 150    # the generated DAG's size
    python benchmarks/dag_overhead.py --generated-only --repeat 3   # that DAG's no-op timings only
    python benchmarks/dag_overhead.py --before main --before-venv /path/to/.venv
        # beside each no-op figure, the same with another revision's Snakefile and DAG code
        # and another environment (main's, before the overhead work): the ratio before / now

Rebuild: in temporary clones at `smoke` scale, a full `dvc repro` (serial), `snakemake --cores N`
(+ `dvc commit -f`) and `make repro` (hrlzoo.pipeline.repro: DVC decides, the stages run side
by side, then `dvc commit -f`), timed once each, and the ratio serial / parallel.

No-op: in an up-to-date repository, `dvc repro`, `dvc status`, `snakemake -n` (planning every
rule from dvc.yaml through DVC's resolver) and `make repro` (its fast path,
hrlzoo.pipeline.uptodate: nothing DVC looks at changed since DVC last said "up to date") and
`make repro --full` (DVC asked again), each repeated; median and spread in seconds. Then one
no-op `dvc repro` under cProfile, its time split into where DVC spends it.
The real DAG is the smoke clone `dvc repro` built. The generated one copies the real stages
(their dependencies, params and outputs, so the same files are hashed and the same params
read) as many times as it takes to reach `--stages`, each copy writing its own outputs, with
commands that only write those outputs; it is built by running them and `dvc commit -f`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import clone_worktree, env_with_venv, run, smoke_everywhere  # noqa: E402

REPEAT = 3
WRITE_OUTS = ("python -c \"import os, sys; f = lambda o: '.' in os.path.basename(o); "
              "[(os.makedirs(os.path.dirname(o) if f(o) else o, exist_ok=True), "
              "open(o if f(o) else os.path.join(o, 'x'), 'w').write(o)) for o in sys.argv[1:]]\" ")


def timed(cmd: str, cwd: Path, env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, shell=True, env=env or env_with_venv(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


BEFORE_FILES = ("Snakefile", "hrlzoo/pipeline/dag.py")  # what the overhead work changed in the repo


def no_op_timings(repo: Path, label: str, before: tuple[str, Path] | None = None) -> None:
    """Median no-op times; with `before` = (revision, venv), the same with that revision's
    Snakefile and DAG code and that environment, and the ratio."""
    n_stages = len(run("dvc stage list --all", cwd=repo).stdout.splitlines())
    status = run("dvc status", cwd=repo).stdout
    assert "up to date" in status, status
    py = f"{env_with_venv()['PATH'].split(os.pathsep)[0]}/python"
    run(f"{py} -m hrlzoo.pipeline.repro --dry", cwd=repo)  # make repro's first no-op: DVC's verdict, recorded
    for what, cmd in (("dvc repro (no-op)", "dvc repro"), ("dvc status", "dvc status"),
                      ("snakemake -n", "snakemake -n"),
                      ("make repro (no-op)", f"{py} -m hrlzoo.pipeline.repro"),
                      ("make repro --full", f"{py} -m hrlzoo.pipeline.repro --full")):
        times = [timed(cmd, repo) for _ in range(REPEAT)]
        now = statistics.median(times)
        line = (f"{label:9s} {n_stages:4d} stages  {what:18s} {now:6.2f} s median "
                f"(min {min(times):.2f}, max {max(times):.2f}; {REPEAT} runs)")
        if before and not what.startswith("make repro"):  # (the fast path is new: no before)
            rev, venv = before
            saved = {f: (repo / f).read_text() for f in BEFORE_FILES}
            root = Path(__file__).resolve().parents[1]
            for f in BEFORE_FILES:
                (repo / f).write_text(run(f"git show {rev}:{f}", cwd=root).stdout)
            env = {**os.environ, "PATH": f"{venv}/bin{os.pathsep}{os.environ['PATH']}"}
            try:
                old = statistics.median([timed(cmd, repo, env) for _ in range(REPEAT)])
            finally:
                for f, text in saved.items():
                    (repo / f).write_text(text)
            line += f"; {rev} with {venv}: {old:6.2f} s, ratio {old / now:.2f}"
        print(line, flush=True)
    where_dvc_spends(repo, label, n_stages)


# DVC's functions that a no-op `dvc repro` spends its time in (cumulative, from cProfile)
PARTS = (("params files re-parsed and looked up, once per stage", "dvc/dependency/param.py", "read_param_file"),
         ("dvc.yaml + dvc.lock parsed and validated", "dvc/dvcfile.py", "_load_yaml"),
         ("per-stage rwlock (.dvc/tmp/rwlock edited twice)", "dvc/rwlock.py", "rwlock"),
         ("outputs stat'ed, hashes looked up in the state db", "dvc/output.py", "status"),
         ("every dependency checked (params included)", "dvc/stage/__init__.py", "_changed_deps"))


def where_dvc_spends(repo: Path, label: str, n_stages: int) -> None:
    """A no-op `dvc repro` under cProfile (its own `--cprofile-dump`), the total split into
    the parts above (cumulative: the last one includes the first)."""
    import pstats

    dump = repo / ".dvc" / "tmp" / "noop.prof"
    run(f"dvc repro -q --cprofile-dump {dump}", cwd=repo)
    stats = pstats.Stats(str(dump)).stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    total = max(v[3] for v in stats.values())
    print(f"{label:9s} {n_stages:4d} stages  no-op dvc repro under cProfile: {total:.2f} s in all", flush=True)
    for what, file, func in PARTS:
        hits = [v for (f, _, fn), v in stats.items() if f.endswith(file) and fn == func]
        ct, calls = sum(v[3] for v in hits), sum(v[1] for v in hits)
        print(f"{label:9s} {n_stages:4d} stages    {100 * ct / total:4.0f}% {what} ({calls} calls)", flush=True)
    dump.unlink()


def generated_dag(dst: Path, n_stages: int) -> Path:
    """A repository whose dvc.yaml repeats the real stages until `n_stages`, built and committed."""
    import yaml

    from hrlzoo.pipeline.dag import dvc_stages

    repo = clone_worktree(dst)
    specs = dvc_stages(repo)
    copies = -(-n_stages // len(specs))
    produced = {o for s in specs for o in s.outs}  # a committed input (not any stage's output) stays shared
    stages, cmds = {}, []
    for i in range(copies):
        def moved(path: str) -> str:
            head, _, rest = path.partition("/")
            return f"{head}/copy{i}/{rest}" if head in ("data", "reports") else path
        for s in specs:
            if len(stages) == n_stages:
                break
            params = [{f: sorted(v)} if v else f for f, v in s.param_values.items()]
            outs = [moved(o) for o in s.outs]
            stages[f"{s.rule}_{i}"] = {"cmd": WRITE_OUTS + " ".join(outs),
                                        "deps": [moved(d) if d in produced else d for d in s.deps], "params": params,
                                        "outs": [{o: {"cache": not o.startswith("reports/")}} for o in outs]}
            cmds.append(stages[f"{s.rule}_{i}"]["cmd"])
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (repo / "dvc.lock").unlink(missing_ok=True)
    for cmd in cmds:  # every command only writes its outputs: run them in order, then record
        run(cmd, cwd=repo)
    run("dvc commit -f -q && git add -A && git -c user.name=b -c user.email=b@e commit -q -m dag", cwd=repo)
    return repo


def schedule_bounds(repo: Path, cores: int) -> tuple[float, float, float]:
    """From the stage wall times a run recorded (reports/timings.json): their sum (one after
    another), the longest chain of dependent stages, and the list schedule on `cores` (what a
    perfect side-by-side run of these stages would take)."""
    from hrlzoo.pipeline import timings
    from hrlzoo.pipeline.dag import dvc_stages
    from hrlzoo.pipeline.repro import Job, critical_paths, simulate

    specs, recorded = dvc_stages(repo), timings.load(repo)
    writer = {o: s.name for s in specs for o in s.outs}
    jobs = []
    for s in specs:  # dvc.yaml declares upstream stages first
        scale = next((v["scale"] for v in s.param_values.values() if "scale" in v), timings.ANY)
        jobs.append(Job(name=s.name, cmd=s.cmd, threads=s.threads, priority=s.priority, scale=scale,
                        upstream={writer[d] for d in s.deps if d in writer},
                        expected=timings.expected(s.cmd, scale, recorded)))
    return (sum(j.expected or 0.0 for j in jobs), max(critical_paths(jobs).values()), simulate(jobs, cores))


def rebuilds(tmp: Path, cores: int, before=None) -> None:
    repos = {}
    for name in ("dvc", "snakemake", "make"):
        repos[name] = clone_worktree(tmp / name)
        smoke_everywhere(repos[name])
    times = {}
    for name, cmd in (("dvc", "dvc repro"),
                      ("snakemake", f"snakemake --cores {cores} && dvc commit -f -q"),
                      ("make", f"python -m hrlzoo.pipeline.repro --cores {cores}")):
        t = time.perf_counter()
        run(cmd, cwd=repos[name], timeout=3600)
        times[name] = time.perf_counter() - t
        print(f"whole DAG at smoke scale: {cmd:50s} {times[name]:7.1f} s", flush=True)
    for name in ("snakemake", "make"):
        print(f"ratio dvc repro / {name}: {times['dvc'] / times[name]:.2f}", flush=True)
    serial, chain, ideal = schedule_bounds(repos["make"], cores)
    print(f"make repro's stage times: sum {serial:.1f} s, longest chain {chain:.1f} s, list schedule on "
          f"{cores} cores {ideal:.1f} s (ideal ratio {serial / ideal:.2f}); its own start and commit: "
          f"{times['make'] - ideal:.1f} s", flush=True)
    no_op_timings(repos["dvc"], "real", before)


def main() -> None:
    global REPEAT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-rebuild", action="store_true", help="skip the smoke rebuilds (the real DAG's "
                    "no-op timings then run in a clone whose stages are built as the generated ones)")
    ap.add_argument("--stages", type=int, default=150, help="size of the generated DAG")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--generated-only", action="store_true", help="only the generated DAG's no-op timings")
    ap.add_argument("--repeat", type=int, default=REPEAT, help="runs of each no-op command (median)")
    ap.add_argument("--before", help="a git revision to compare the no-op times with (e.g. main)")
    ap.add_argument("--before-venv", type=Path, help="the environment of that revision")
    args = ap.parse_args()
    before = (args.before, args.before_venv) if args.before else None
    REPEAT = args.repeat
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.generated_only:
            pass
        elif args.no_rebuild:
            from hrlzoo.pipeline.dag import dvc_stages

            no_op_timings(generated_dag(tmp / "real", len(dvc_stages(Path(__file__).parents[1]))), "real", before)
        else:
            rebuilds(tmp, args.cores, before)
        no_op_timings(generated_dag(tmp / "generated", args.stages), "generated", before)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
