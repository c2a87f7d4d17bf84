"""What every stage does the same way: params, seeds, threads, device, atomic outputs,
a NaN/inf guard, progress bars, exit codes.

A stage module reads, top to bottom:

    def main(argv=None):
        return run_stage("heron_train", "heron", HeronParams, body, argv,
                         add_args=..., outputs=lambda a, p: [f"data/heron/runs/{a.task}-{a.method}"])

    def body(ctx: Stage):
        out = ctx.out("data/heron/runs/...")   # a temporary sibling, renamed into place on success
        ...

Exit codes: 0 done; 2 bad params or arguments, a missing input artifact (the message names
it and the stage that writes it), or no git identity under `dvc exp run` (nothing written);
1 any failure, including a non-finite loss (the message names the stage and the step).
Outputs are written under a temporary name and renamed only when the whole body has
succeeded, so a stage killed at any point (even by SIGKILL) leaves no partial artifact, and
the next run redoes it. Each successful run records its wall time (`hrlzoo.pipeline.timings`),
from which `make repro` estimates a rebuild.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from hrlzoo.pipeline.params import ParamsError, load_params, params_path

PARTIAL = ".partial"


class NonFiniteError(RuntimeError):
    """A loss or metric became NaN or infinite."""


def partial_path(path: str | os.PathLike) -> Path:
    """Where an output is written before it is renamed into place: `dir/.name.partial`."""
    p = Path(path)
    return p.with_name(f".{p.name}{PARTIAL}")


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def commit_outputs(finals: Iterable[str | os.PathLike]) -> None:
    """Rename every written `.partial` into its final place (replacing an older output)."""
    for final in map(Path, finals):
        tmp = partial_path(final)
        if not tmp.exists():
            raise RuntimeError(f"stage declared output {final} but did not write it")
        if final.exists():
            remove(final)
        os.replace(tmp, final)


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParamsError("device = 'cuda': no CUDA device is visible here: expected auto or cpu")
    return torch.device(name)


def git_identity_problem() -> str | None:
    """Under `dvc exp run` (which commits the experiment when every stage is done): the one-line
    fix when git has no user name or email, else None."""
    import subprocess

    if not os.environ.get("DVC_EXP_NAME"):
        return None
    for key, what in (("user.name", "NAME"), ("user.email", "EMAIL")):
        if os.environ.get(f"GIT_AUTHOR_{what}") and os.environ.get(f"GIT_COMMITTER_{what}"):
            continue
        res = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True)
        if res.returncode != 0 or not res.stdout.strip():
            return ("dvc exp run commits the experiment at the end and git has no user name or email "
                    "here: set them first (git config --global user.name 'Your Name'; "
                    "git config --global user.email you@example.com)")
    return None


def missing_input_message(stage: str, missing: str) -> str:
    """One line: which input is missing and which DVC stage writes it (read from dvc.yaml)."""
    from hrlzoo.pipeline.dag import producer_of

    producer = producer_of(missing)
    if producer is None:
        return f"{stage}: input {missing} is missing"
    out, writer = producer
    return (f"{stage}: input {out} is missing: stage {writer} writes it "
            f"(dvc repro {writer}, or dvc checkout {out} if it was built before)")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int) -> int:
    """torch intra-op threads from params (0 = every core), never more than the cores."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = cores if threads == 0 else min(threads, cores)
    torch.set_num_threads(n)
    return n


@dataclass
class Stage:
    """The context a stage body receives."""

    name: str
    params: Any
    args: argparse.Namespace
    outputs: list[Path]
    device: Any = None
    threads: int = 1
    started: float = field(default_factory=time.time)
    bar: Any = None  # the latest progress bar: where a failure happened (its description and step)

    def out(self, final: str | os.PathLike) -> Path:
        """The temporary path to write the declared output `final` to."""
        final = Path(final)
        if final not in self.outputs:
            raise RuntimeError(f"{self.name}: {final} is not a declared output of this stage")
        return partial_path(final)

    def guard(self, what: str, value: float, step: int) -> float:
        """Fail the stage when `value` is NaN or infinite."""
        v = float(value)
        if not math.isfinite(v):
            raise NonFiniteError(f"{self.name}: {what} is {v} at step {step}")
        return v

    def progress(self, total: int, desc: str, unit: str = "step"):
        """A progress bar on stderr with a rate (steps/s); quiet updates when not a terminal."""
        from tqdm import tqdm

        tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=f"{self.name} {desc}", unit=unit, file=sys.stderr,
                        mininterval=0.5 if tty else 10.0, dynamic_ncols=tty, leave=tty)
        return self.bar

    def where(self, msg: str) -> str:
        """`msg` naming this stage and, when it names no step, the step of the latest progress bar."""
        if not msg.startswith(f"{self.name}:"):
            msg = f"{self.name}: {msg}"
        if " at step " not in msg and self.bar is not None:
            msg += f" at step {self.bar.n + 1} of '{self.bar.desc}'"
        return msg

    def log(self, msg: str) -> None:
        print(f"[{self.name} {time.time() - self.started:7.1f}s] {msg}", file=sys.stderr, flush=True)


def run_stage(name: str, paper: str, schema: type, body: Callable[[Stage], None],
              argv: list[str] | None = None, *,
              add_args: Callable[[argparse.ArgumentParser], None] | None = None,
              outputs: Callable[[argparse.Namespace, Any], list[str]] = lambda a, p: [],
              validate_args: Callable[[argparse.Namespace, Any], str | None] | None = None) -> int:
    """Run one stage: parse, validate, prepare, run `body`, commit outputs. Returns the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m stages.{paper}.{name.split('_', 1)[-1]}",
                                     description=(body.__doc__ or name).strip().splitlines()[0])
    if add_args:
        add_args(parser)
    args = parser.parse_args(argv)
    ctx = Stage(name=name, params=None, args=args, outputs=[])
    try:
        ctx.params = params = load_params(paper, schema)
        problem = (validate_args(args, params) if validate_args else None) or git_identity_problem()
        if problem:
            raise ParamsError(problem)
        ctx.threads = set_threads(getattr(params, "threads", 1))
        ctx.device = resolve_device(getattr(params, "device", "cpu"))
    except ParamsError as e:
        print(f"error: {_naming_the_file(e, paper)}", file=sys.stderr)
        return 2
    finals = ctx.outputs = [Path(o) for o in outputs(args, params)]
    for f in finals:  # leftovers of a killed run
        remove(partial_path(f))
        partial_path(f).parent.mkdir(parents=True, exist_ok=True)
    try:
        ctx.log(f"scale={getattr(params, 'scale', '?')} device={ctx.device} threads={ctx.threads}")
        body(ctx)
        commit_outputs(finals)
    except ParamsError as e:
        print(f"error: {_naming_the_file(e, paper)}", file=sys.stderr)
        _cleanup(finals)
        return 2
    except FileNotFoundError as e:
        missing = _missing_input(e)
        _cleanup(finals)
        if missing is None:
            raise
        print(f"error: {missing_input_message(name, missing)}", file=sys.stderr)
        return 2
    except NonFiniteError as e:
        print(f"\nerror: {ctx.where(str(e))}", file=sys.stderr)
        _cleanup(finals)
        return 1
    except BaseException:
        _cleanup(finals)
        raise
    ctx.log(f"done in {time.time() - ctx.started:.1f}s")
    from hrlzoo.pipeline import timings

    timings.record(timings.command_line(argv), getattr(params, "scale", timings.ANY), _process_seconds())
    return 0


def _process_seconds() -> float:
    """Wall seconds since this process started (imports included)."""
    import psutil

    return time.time() - psutil.Process().create_time()


def _naming_the_file(e: ParamsError, paper: str) -> str:
    """A params problem's line, starting with the params file it is about."""
    msg = str(e)
    return msg if msg.startswith(("params/", str(params_path(paper).parent))) else f"{params_path(paper)}: {msg}"


def _missing_input(e: FileNotFoundError) -> str | None:
    """The relative path of the missing file when it lies inside the repository, else None."""
    import re

    name = e.filename or (re.search(r"(?:'|: )((?:data|reports)/[^'\s:]+)", str(e)) or [None, None])[1]
    if not name:
        return None
    path = Path(os.path.abspath(name))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return None


def _cleanup(finals: list[Path]) -> None:
    for f in finals:
        remove(partial_path(f))
