"""Load `params/<paper>.yaml`, validate it against the paper's schema, pick the scale.

A schema is a tree of dataclasses. Fields carry their own checks through `knob(...)`:

    @dataclass
    class TD3:
        lr: float = knob(3e-4, gt=0, help="Adam learning rate of actor and critics")

`load_params("heron", HeronParams)` reads the YAML (omegaconf's loader) and builds the schema's
dataclasses from it, strictly:

- an unknown key, at any depth, is an error; so is a key of a dict-valued param outside the
  knob's `keys` (and, with `all_keys=True`, a missing one);
- types are exact: a bool knob takes only true/false (not 2), a number knob no bool, an int
  knob no float, a str knob no number;
- what the file says is what runs: a dict-valued param given in the file replaces the schema's
  default whole (no merge: a key the user deletes stays deleted); a dataclass-valued param
  takes the schema's default for each field the file leaves out;
- then every knob's range is checked (`gt`/`ge`/`lt`/`le`/`choices`, on each entry of a list;
  `min_items`, `unique` on lists), and each dataclass's own `validate()`.

Any problem raises `ParamsError`, whose message is one line naming the file, the key and what
was expected; `run_stage` and `python -m hrlzoo.pipeline.check` turn it into exit code 2
before any output is written.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

SCALES = ("smoke", "cpu", "paper")
T = TypeVar("T")


class ParamsError(Exception):
    """A params file that does not match its schema (exit code 2)."""


def knob(default: Any = MISSING, *, help: str = "", gt: float | None = None,
         ge: float | None = None, le: float | None = None, lt: float | None = None,
         choices: Sequence[Any] | None = None, factory: Any = None,
         keys: Sequence[str] | None = None, all_keys: bool = False,
         min_items: int | None = None, unique: bool = False):
    """A schema field with its range. `factory` builds a mutable default (lists, dicts).

    Ranges apply to the value, or to each entry of a list / each value of a dict. `keys`: the
    keys a dict-valued knob may have (`all_keys`: must have every one). `min_items`, `unique`:
    for lists."""
    meta = {"help": help, "gt": gt, "ge": ge, "le": le, "lt": lt, "choices": choices,
            "keys": tuple(keys) if keys is not None else None, "all_keys": all_keys,
            "min_items": min_items, "unique": unique}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Common:
    """Knobs every paper has. A paper's schema subclasses this."""

    scale: str = knob("cpu", choices=SCALES,
                      help="smoke: seconds (tests); cpu: minutes on 2 cores; paper: published sizes")
    seeds: list[int] = knob(factory=lambda: [0, 1, 2], ge=0, min_items=1, unique=True,
                            help="independent seeds, run inside each stage")
    threads: int = knob(1, ge=0, help="torch threads per stage; 0 = all cores of the machine")
    device: str = knob("auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when available")


# ---------------------------------------------------------------- building the dataclasses

def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _build(tp: Any, raw: Any, path: str) -> Any:
    """`raw` (plain YAML data) as the schema type `tp`, strictly; ParamsError("key = v: ...")."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":  # Optional[X], X | None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if raw is None else _build(args[0], raw, path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(raw, dict):
            raise ParamsError(f"{path} = {raw!r}: expected a mapping")
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp) if f.init]
        for k in raw:
            if k not in names:
                raise ParamsError(f"unknown key '{_join(path, k)}' (not in the schema)")
        kwargs = {k: _build(hints[k], v, _join(path, k)) for k, v in raw.items()}
        for f in dataclasses.fields(tp):
            if f.init and f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
                raise ParamsError(f"{_join(path, f.name)}: missing (the schema has no default)")
        return tp(**kwargs)
    if origin is dict:
        if not isinstance(raw, dict):
            raise ParamsError(f"{path} = {raw!r}: expected a mapping")
        _, value_tp = typing.get_args(tp)
        return {k: _build(value_tp, v, _join(path, k)) for k, v in raw.items()}
    if origin is list:
        if not isinstance(raw, list):
            raise ParamsError(f"{path} = {raw!r}: expected a list")
        (item_tp,) = typing.get_args(tp)
        return [_build(item_tp, v, f"{path}[{i}]") for i, v in enumerate(raw)]
    if tp is Any:
        return raw
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}.get(tp)
    if ok is None:
        raise TypeError(f"{path}: the schema type {tp!r} is not supported")
    if not ok(raw):
        raise ParamsError(f"{path} = {raw!r}: expected {_type_name(tp)}")
    return float(raw) if tp is float else raw


# ---------------------------------------------------------------- ranges

def _range_problem(value: Any, meta: dict) -> str | None:
    if meta.get("choices") is not None and value not in meta["choices"]:
        return "one of " + ", ".join(map(repr, meta["choices"]))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value):
        return "a number (not nan)"
    for op, text, ok in (("gt", ">", lambda v, b: v > b), ("ge", ">=", lambda v, b: v >= b),
                         ("lt", "<", lambda v, b: v < b), ("le", "<=", lambda v, b: v <= b)):
        bound = meta.get(op)
        if bound is not None and not ok(value, bound):
            return f"a number {text} {bound}"
    return None


def _shape_problem(value: Any, meta: dict) -> str | None:
    """Problems of a list or dict knob as a whole: its keys, its length, repeated entries."""
    if isinstance(value, dict) and meta.get("keys") is not None:
        allowed = meta["keys"]
        unknown = [k for k in value if k not in allowed]
        missing = [k for k in allowed if k not in value] if meta.get("all_keys") else []
        if unknown or missing:
            what = f"unknown key '{unknown[0]}'" if unknown else f"key '{missing[0]}' missing"
            need = "exactly" if meta.get("all_keys") else "only keys among"
            return f"{what}: expected {need} {', '.join(allowed)}"
    if isinstance(value, list):
        n = meta.get("min_items")
        if n is not None and len(value) < n:
            return f"expected at least {n} entr{'y' if n == 1 else 'ies'}"
        if meta.get("unique") and len(set(map(repr, value))) != len(value):
            return "expected distinct entries"
    return None


def _check_tree(obj: Any, path: str) -> None:
    """Raise ParamsError("key = v: expected ...") at the first problem: every field's range and
    shape first, each subtree before the `validate()` of the dataclass that holds it (so a
    cross-field rule only ever sees values in range)."""
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            key = _join(path, f.name)
            meta = dict(f.metadata)
            shape = _shape_problem(value, meta)
            if shape:
                raise ParamsError(f"{key} = {value!r}: {shape}" if isinstance(value, list) else f"{key}: {shape}")
            if isinstance(value, list):
                entries = [(f"{key}[{i}]", v) for i, v in enumerate(value)]
            elif isinstance(value, dict):
                entries = [(_join(key, k), v) for k, v in value.items()]
            else:
                entries = [(key, value)]
            for where, item in entries:
                expected = _range_problem(item, meta)
                if expected:
                    raise ParamsError(f"{where} = {item!r}: expected {expected}")
            _check_tree(value, key)
        check = getattr(obj, "validate", None)
        if callable(check):  # cross-field rules a schema adds: return "key: expected ..." or None
            msg = check()
            if msg:
                raise ParamsError(f"{path + '.' if path else ''}{msg}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_tree(v, _join(path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_tree(v, f"{path}[{i}]")


# ---------------------------------------------------------------- files and papers

def params_path(paper: str, root: str | os.PathLike | None = None) -> Path:
    return Path(root or ".") / "params" / f"{paper}.yaml"


def read_yaml(path: Path) -> Any:
    """The file's plain data, or ParamsError. omegaconf's YAML loader (`1e-4` is a number);
    `${...}` interpolations are resolved by omegaconf itself."""
    import yaml
    from omegaconf import OmegaConf
    from omegaconf._utils import get_yaml_loader

    if not path.exists():
        raise ParamsError(f"{path}: file not found")
    try:
        text = path.read_text()
        if "${" in text:
            return OmegaConf.to_container(OmegaConf.create(text), resolve=True)
        return yaml.load(text, Loader=get_yaml_loader())
    except Exception as e:  # YAML syntax, a bad interpolation
        raise ParamsError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None


def load_params(paper: str, schema: type[T], root: str | os.PathLike | None = None) -> T:
    """Read and validate `params/<paper>.yaml`; return an instance of `schema`."""
    path = params_path(paper, root)
    raw = read_yaml(path)
    if raw is None or raw == {}:
        raise ParamsError(f"{path}: the file is empty (expected every knob of stages/{paper}/params.py)")
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of keys at the top level, found {type(raw).__name__}")
    try:
        obj = _build(schema, raw, "")
        _check_tree(obj, "")
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
    return obj


def schema_of(paper: str) -> type:
    """The schema of a paper: the one `Common` subclass defined in `stages/<paper>/params.py`."""
    try:
        module = importlib.import_module(f"stages.{paper}.params")
    except ModuleNotFoundError as e:
        if e.name not in (f"stages.{paper}", f"stages.{paper}.params"):
            raise
        raise ParamsError(f"params/{paper}.yaml: no schema stages/{paper}/params.py for it") from None
    found = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Common)
             and c is not Common and c.__module__ == module.__name__]
    if len(found) != 1:
        raise TypeError(f"stages/{paper}/params.py: expected one subclass of Common, found {len(found)}")
    return found[0]


def papers(root: str | os.PathLike | None = None) -> list[str]:
    """Every paper with a params file, sorted."""
    return sorted(p.stem for p in (Path(root or ".") / "params").glob("*.yaml"))


def check_all(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Validate every params file of the repository; {paper: params}, or the first ParamsError."""
    return {paper: load_params(paper, schema_of(paper), root) for paper in papers(root)}
