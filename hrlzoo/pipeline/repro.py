"""`make repro`: rebuild what is out of date on every core, saying first what it will run and
for how long, then showing progress over the DAG.

    python -m hrlzoo.pipeline.repro [--cores N] [--dry] [--full] [STAGE ...] [--single STAGE ...]

STAGE: a target with everything upstream (none: every stage); `--single`: a stage without its
upstream (`make repro PAPER=heron` adds `--single summary`: the summary reads every paper's
committed metrics.json, and HERON's alone must not rebuild the others).

0. Nothing DVC looks at changed since it last found every chosen stage up to date
   (`hrlzoo.pipeline.uptodate`: the stats of every file it reads): "nothing to run", at once.
1. Every params file is checked (`hrlzoo.pipeline.check`): a bad one exits 2 before anything.
2. DVC decides what is out of date (`stage.changed()`: commands, dependencies, params and
   outputs against dvc.lock, as `dvc status` does), plus everything downstream of that (but not
   below params_check, whose marker output never changes: a params edit re-runs it and leaves each
   stage below to be judged by its own deps and params, as `dvc repro` does); outputs
   that DVC's cache holds are checked out rather than rebuilt. Leftover `.name.partial` files of
   killed runs are removed.
3. The plan: each stage to run with the wall time of its last recorded run at its scale
   (`hrlzoo.pipeline.timings`), and the expected wall time on N cores (the same greedy list
   schedule as below, simulated with those times).
4. The stages run as soon as their upstream stages are done, as many at once as their
   `threads` (from `meta: snakemake:`) fit in N cores, the longest remaining chain first; each
   one's output goes to `logs/<stage>.log`. A line per start and finish says stages done /
   total, elapsed and the remaining estimate.
5. `dvc commit -f` records every stage that finished in dvc.lock and the cache, exactly what
   `dvc repro` would have written (the stages are deterministic; tests/test_e2e.py compares).

A failed stage stops new starts; the running ones finish, the finished ones are committed,
and the failed stage's log tail is printed (exit 1). Ctrl-C stops every stage (exit 130).
"""

from __future__ import annotations

import argparse
import heapq
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hrlzoo.pipeline import timings, uptodate
from hrlzoo.pipeline.stage import git_identity_problem, partial_path, remove

LOGS = Path("logs")


@dataclass
class Job:
    name: str
    cmd: str
    threads: int
    priority: int
    scale: str
    upstream: set[str] = field(default_factory=set)
    expected: float | None = None  # seconds, from the last recorded run
    started: float | None = None
    seconds: float | None = None


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def cores_available() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---------------------------------------------------------------- what to run

def plan(root: Path, targets: list[str], specs: dict, single: list[str] = ()) -> tuple[list[Job], int]:
    """(jobs to run in dependency order, stages in the targets' DAG). Outputs DVC's cache holds
    for an unchanged stage are checked out first."""
    import networkx as nx
    from dvc.repo import Repo

    from hrlzoo.pipeline.dag import CHECK_MARKER, address

    with Repo(str(root)) as repo, repo.lock:
        graph = repo.index.graph  # edges: stage -> a stage it depends on
        if targets or single:
            chosen = {st for t in targets for st in repo.stage.collect(t)}
            chosen |= {d for st in chosen for d in nx.descendants(graph, st)}
            chosen |= {st for t in single for st in repo.stage.collect(t)}
        else:
            chosen = {st for st in graph if getattr(st, "cmd", None)}
        sub = graph.subgraph(chosen)
        names = {st: address(st, root) for st in chosen}
        position = {name: i for i, name in enumerate(specs)}  # dvc.yaml's order where the DAG allows
        order = list(nx.lexicographical_topological_sort(sub.reverse(), key=lambda st: position[names[st]]))
        stale: set = set()  # stages to run
        passing: set = set()  # ... whose outputs cannot change (their downstream is judged on its own)
        for st in order:
            if any(d in stale and d not in passing for d in sub.successors(st)):
                stale.add(st)
            elif st.changed():
                if _restore(repo, st):  # the cache has its outputs: no need to rebuild
                    continue
                stale.add(st)
                if list(specs[names[st]].outs) == [CHECK_MARKER]:
                    # params_check writes the same marker bytes whenever every params file is
                    # valid (main() has checked them before planning): a params edit re-runs it
                    # but must not, through it, re-run every stage; each stage below is judged
                    # by its own deps and params, as `dvc repro` judges it
                    passing.add(st)
        recorded = timings.load(root)
        jobs = []
        for st in order:
            if st not in stale:
                continue
            spec = specs[names[st]]
            scale = next((v["scale"] for v in spec.param_values.values() if "scale" in v), timings.ANY)
            jobs.append(Job(name=spec.name, cmd=spec.cmd, threads=spec.threads, priority=spec.priority,
                            scale=scale, upstream={names[d] for d in sub.successors(st) if d in stale and d not in passing},
                            expected=timings.expected(spec.cmd, scale, recorded)))
    return jobs, len(chosen)


def _restore(repo, stage) -> bool:
    """Check out a changed stage's outputs when dvc.lock's entry is otherwise current and the
    cache (local or shared) holds them; True when the stage is then up to date."""
    if not stage.outs or not all(out.hash_info and out.hash_info.value for out in stage.outs):
        return False  # dvc.lock records no outputs for it
    try:
        if stage.changed_deps() or stage.changed_stage():
            return False
        stage.checkout()
        return not stage.changed()
    except Exception:  # not in the cache: rebuild
        return False


def remove_partials(root: Path, specs: dict) -> int:
    """Delete `.name.partial` leftovers of killed stages next to every declared output."""
    n = 0
    for spec in specs.values():
        for out in spec.outs:
            tmp = root / partial_path(out)
            if tmp.exists() or tmp.is_symlink():
                remove(tmp)
                n += 1
    return n


# ---------------------------------------------------------------- the schedule

def critical_paths(jobs: list[Job]) -> dict[str, float]:
    """Each job's longest chain of expected times to the end of the DAG (itself included)."""
    downstream: dict[str, list[str]] = {j.name: [] for j in jobs}
    for j in jobs:
        for u in j.upstream:
            downstream[u].append(j.name)
    by_name = {j.name: j for j in jobs}
    memo: dict[str, float] = {}
    for j in reversed(jobs):  # jobs are in dependency order
        memo[j.name] = (j.expected or 0.0) + max((memo[d] for d in downstream[j.name]), default=0.0)
    return memo if len(memo) == len(by_name) else {}


def simulate(jobs: list[Job], cores: int, now: float = 0.0, done: set[str] = frozenset(),
             running: dict[str, float] | None = None) -> float:
    """Expected seconds until every job is done: the scheduler below, fed the recorded times
    (unknown ones as 0). `running`: name -> seconds already spent."""
    running = dict(running or {})
    path = critical_paths(jobs)
    by_name = {j.name: j for j in jobs}
    finished = set(done)
    events = [(max((by_name[n].expected or 0.0) - spent, 0.0), n) for n, spent in running.items()]
    heapq.heapify(events)
    free = cores - sum(min(by_name[n].threads, cores) for n in running)
    pending = [j for j in jobs if j.name not in finished and j.name not in running]
    t = 0.0
    while pending or events:
        ready = sorted((j for j in pending if j.upstream <= finished),
                       key=lambda j: (-j.priority, -path.get(j.name, 0.0)))
        for j in ready:
            need = min(j.threads, cores)
            if need <= free:
                free -= need
                pending.remove(j)
                heapq.heappush(events, (t + (j.expected or 0.0), j.name))
        if not events:
            break
        t, name = heapq.heappop(events)
        finished.add(name)
        free += min(by_name[name].threads, cores)
    return t


def run(jobs: list[Job], cores: int, root: Path, total_dag: int) -> int:
    """Run every job; returns the exit code. Commits the finished stages to DVC."""
    LOGS.mkdir(exist_ok=True)
    path = critical_paths(jobs)
    done: set[str] = set()
    running: dict[subprocess.Popen, Job] = {}
    failed: list[Job] = []
    pending = list(jobs)
    t0 = time.time()
    last_line = 0.0

    def status(event: str) -> None:
        nonlocal last_line
        last_line = time.time()
        spent = {j.name: time.time() - j.started for j in running.values()}
        left = simulate(jobs, cores, done=done, running=spent)
        unknown = sum(1 for j in jobs if j.name not in done and j.expected is None)
        more = f" + {unknown} never recorded" if unknown else ""
        print(f"[repro {fmt(time.time() - t0)}] {len(done)}/{len(jobs)} stages done, "
              f"{len(running)} running; remaining ~{fmt(left)}{more}: {event}", flush=True)

    def start_ready() -> None:
        free = cores - sum(min(j.threads, cores) for j in running.values())
        for j in sorted((j for j in pending if j.upstream <= done),
                        key=lambda j: (-j.priority, -path.get(j.name, 0.0))):
            need = min(j.threads, cores)
            if need > free:
                continue
            free -= need
            pending.remove(j)
            log = open(LOGS / f"{j.name}.log", "w")
            j.started = time.time()
            proc = subprocess.Popen(j.cmd, shell=True, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            log.close()
            running[proc] = j
            status(f"started {j.name} (last run {fmt(j.expected)})")

    def stop_all(*_):
        for proc in running:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, stop_all)
    code = 0
    try:
        start_ready()
        while running:
            proc = _wait_any(running, timeout=60.0)
            if proc is None:
                if time.time() - last_line >= 60.0:
                    status("still running " + ", ".join(j.name for j in running.values()))
                continue
            j = running.pop(proc)
            j.seconds = time.time() - j.started
            if proc.returncode == 0:
                done.add(j.name)
                timings.record(j.cmd, j.scale, j.seconds, root)
                status(f"finished {j.name} in {fmt(j.seconds)}")
            else:
                failed.append(j)
                status(f"FAILED {j.name} (exit {proc.returncode}): see logs/{j.name}.log")
                pending.clear()  # no new starts; the running ones finish
            if not failed:
                start_ready()
    except KeyboardInterrupt:
        for proc in running:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        print("[repro] stopped: every running stage was killed (their outputs are untouched)", flush=True)
        code = 130
    finally:
        signal.signal(signal.SIGTERM, old)
    finished = [j.name for j in jobs if j.name in done]
    if finished:
        print(f"[repro] dvc commit -f: recording {len(finished)} stages in dvc.lock and the cache", flush=True)
        res = subprocess.run(["dvc", "commit", "-f", "-q", *finished], cwd=root)
        if res.returncode != 0 and code == 0:
            code = res.returncode
    for j in failed:
        tail = (LOGS / f"{j.name}.log").read_text(errors="replace").splitlines()[-15:]
        print(f"--- logs/{j.name}.log (last lines)\n" + "\n".join(tail), flush=True)
    if failed and code == 0:
        code = 1
    if code == 0:
        print(f"[repro] done: {len(done)} stages in {fmt(time.time() - t0)} "
              f"(of {total_dag} in the DAG; the others were up to date)", flush=True)
    return code


def _wait_any(running: dict, timeout: float):
    """The first child that exits within `timeout` seconds, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for proc in running:
            if proc.poll() is not None:
                return proc
        time.sleep(0.2)
    return None


# ---------------------------------------------------------------- the command

def print_plan(jobs: list[Job], total_dag: int, cores: int) -> None:
    if not jobs:
        print(f"[repro] all {total_dag} stages are up to date: nothing to run", flush=True)
        return
    width = max(len(j.name) for j in jobs)
    print(f"[repro] {len(jobs)} of {total_dag} stages to run, on {cores} cores "
          "(last recorded wall time of each, at its scale):")
    for j in jobs:
        print(f"  {j.name:<{width}}  {fmt(j.expected):>7}  {j.scale}")
    unknown = [j for j in jobs if j.expected is None]
    serial = sum(j.expected or 0.0 for j in jobs)
    note = f"; {len(unknown)} never recorded, counted as 0" if unknown else ""
    print(f"[repro] expected wall time ~{fmt(simulate(jobs, cores))} on {cores} cores "
          f"({fmt(serial)} one after another{note})", flush=True)


def main(argv: list[str] | None = None) -> int:
    from hrlzoo.pipeline import check
    from hrlzoo.pipeline.dag import dvc_stages

    ap = argparse.ArgumentParser(prog="python -m hrlzoo.pipeline.repro", description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", help="DVC stages (with everything upstream); none: every stage")
    ap.add_argument("--single", nargs="+", default=[], metavar="STAGE",
                    help="stages to run when out of date, without their upstream")
    ap.add_argument("--cores", type=int, default=0, help="cores to fill (default 0: every core of the machine)")
    ap.add_argument("--dry", action="store_true",
                    help="print the plan, run nothing (outputs the cache holds are still checked out)")
    ap.add_argument("--full", action="store_true",
                    help="ask DVC even when nothing it looks at changed since it last found everything up to date")
    args = ap.parse_args(argv)
    root = Path.cwd()
    k = uptodate.key(args.targets, args.single)
    if not args.full:
        n = uptodate.unchanged(root, k)
        if n is not None and git_identity_problem() is None:  # the rest of check.main depends on files
            print(f"[repro] all {n} stages are up to date: nothing to run (no file DVC looks at changed "
                  f"since it last found them up to date; --full asks it again)", flush=True)
            return 0
    if check.main([]) != 0:
        return 2
    cores = args.cores or cores_available()
    specs = {s.name: s for s in dvc_stages(root)}
    watched = uptodate.paths_of(specs, list(specs))
    before = uptodate.signature(root, watched)
    if not args.dry:
        n = remove_partials(root, specs)
        if n:
            print(f"[repro] removed {n} leftover .partial files of killed stages", flush=True)
    jobs, total = plan(root, args.targets, specs, args.single)
    print_plan(jobs, total, cores)
    if not jobs:
        uptodate.record(root, k, watched, before, total)
        return 0
    uptodate.forget(root)
    if args.dry:
        return 0
    timings.prune([s.cmd for s in specs.values()], root)
    return run(jobs, cores, root, total)


if __name__ == "__main__":
    sys.exit(main())
