"""Load `params/<paper>.yaml`, validate it against the paper's schema, pick the scale.

A schema is a tree of dataclasses. Fields carry their own checks through `knob(...)`:

    @dataclass
    class TD3:
        lr: float = knob(3e-4, gt=0, help="Adam learning rate of actor and critics")

`load_params("heron", HeronParams)` merges the YAML into the schema with omegaconf (so an
unknown key or a wrong type is caught), then walks the tree checking every knob's range.
Any problem raises `ParamsError`, whose message is one line naming the file, the key and
what was expected; `stage_main` turns it into exit code 2 before any output is written.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

SCALES = ("smoke", "cpu", "paper")
T = TypeVar("T")


class ParamsError(Exception):
    """A params file that does not match its schema (exit code 2)."""


def knob(default: Any = MISSING, *, help: str = "", gt: float | None = None,
         ge: float | None = None, le: float | None = None, lt: float | None = None,
         choices: Sequence[Any] | None = None, factory: Any = None):
    """A schema field with its range. `factory` builds a mutable default (lists, dicts)."""
    meta = {"help": help, "gt": gt, "ge": ge, "le": le, "lt": lt, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Common:
    """Knobs every paper has. A paper's schema subclasses this."""

    scale: str = knob("cpu", choices=SCALES,
                      help="smoke: seconds (tests); cpu: minutes on 2 cores; paper: published sizes")
    seeds: list[int] = knob(factory=lambda: [0, 1, 2], help="independent seeds, run inside each stage")
    threads: int = knob(1, ge=0, help="torch threads per stage; 0 = all cores of the machine")
    device: str = knob("auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when available")


def _range_problem(value: Any, meta: dict) -> str | None:
    if meta.get("choices") is not None and value not in meta["choices"]:
        return "one of " + ", ".join(map(repr, meta["choices"]))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    for op, text, ok in (("gt", ">", lambda v, b: v > b), ("ge", ">=", lambda v, b: v >= b),
                         ("lt", "<", lambda v, b: v < b), ("le", "<=", lambda v, b: v <= b)):
        bound = meta.get(op)
        if bound is not None and not ok(value, bound):
            return f"a number {text} {bound}"
    return None


def _check_tree(obj: Any, path: str, problems: list[str]) -> None:
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            key = f"{path}.{f.name}" if path else f.name
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                expected = _range_problem(item, dict(f.metadata))
                if expected:
                    where = f"{key}[{i}]" if isinstance(value, list) else key
                    problems.append(f"{where} = {item!r}: expected {expected}")
            _check_tree(value, key, problems)
        check = getattr(obj, "validate", None)
        if callable(check):  # cross-field rules a schema adds: return "key: expected ..." or None
            msg = check()
            if msg:
                problems.append(f"{path + '.' if path else ''}{msg}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_tree(v, f"{path}.{k}" if path else str(k), problems)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_tree(v, f"{path}[{i}]", problems)


def params_path(paper: str, root: str | os.PathLike | None = None) -> Path:
    return Path(root or ".") / "params" / f"{paper}.yaml"


def load_params(paper: str, schema: type[T], root: str | os.PathLike | None = None) -> T:
    """Read and validate `params/<paper>.yaml`; return an instance of `schema`."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    path = params_path(paper, root)
    if not path.exists():
        raise ParamsError(f"{path}: file not found")
    try:
        raw = OmegaConf.load(path)
    except Exception as e:  # YAML syntax
        raise ParamsError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), raw)
        obj = OmegaConf.to_object(merged)
    except ConfigKeyError as e:
        raise ParamsError(f"{path}: unknown key '{e.full_key}' (not in the {paper} schema)") from None
    except ValidationError as e:
        msg = str(e.msg).splitlines()[0] if e.msg else str(e).splitlines()[0]
        raise ParamsError(f"{path}: {e.full_key}: {msg}") from None
    except OmegaConfBaseException as e:
        raise ParamsError(f"{path}: {str(e).splitlines()[0]}") from None
    problems: list[str] = []
    _check_tree(obj, "", problems)
    if problems:
        raise ParamsError(f"{path}: {problems[0]}")
    return obj
