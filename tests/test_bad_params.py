"""Bad input, table-driven over every paper's params file (a new paper's file and schema are
picked up by themselves): each case must stop with exit 2 and one line naming the file, the
key and what was expected, before any output is touched.

The cases come from the schema and the committed file together: for every knob the file sets,
a wrong type (2 for a bool, true for a number), a value past each declared bound (on the first
entry of a size list), an empty or repeated list where the knob forbids it, an unknown or a
deleted key of a dict-valued param; plus, per file, an unknown key at the top and one level
down, and an empty file. Every case goes through `load_params` and through
`python -m hrlzoo.pipeline.check` (the first stage of every run); one case per paper goes
through that paper's first stage itself, with a previous output in place that must survive.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import math
import shutil
import typing
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from hrlzoo.pipeline import check
from hrlzoo.pipeline.params import ParamsError, load_params, papers, read_yaml, schema_of

PAPERS = papers(ROOT)


def _leaf(tp):
    origin = typing.get_origin(tp)
    return typing.get_args(tp)[-1] if origin in (list, dict) else tp


def _below(meta: dict, tp) -> list[tuple[float, str]]:
    """Values just past each declared bound, with the phrase the error must contain."""
    out = []
    for op, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        b = meta.get(op)
        if b is None or (isinstance(b, float) and math.isinf(b)):
            continue
        if op in ("gt", "le"):
            bad = b if op == "gt" else (b + 1 if tp is int else b + 0.5)
        else:
            bad = (b - 1 if tp is int else b - 0.5) if op == "ge" else b
        out.append((int(bad) if tp is int else float(bad), f"expected a number {sign} {b}"))
    if tp is int and meta.get("ge") == 1:  # size lists / sizes: zero and negative entries
        out.append((-4, "expected a number >= 1"))
    return out


def cases(paper: str):
    """(id, mutate(raw), key, expected phrase) for one paper's file."""
    schema = schema_of(paper)
    raw = read_yaml(ROOT / "params" / f"{paper}.yaml")
    found = []

    def setter(path, value):
        def mutate(d):
            node = d
            for k in path[:-1]:
                node = node[k]
            if value is _DELETE:
                del node[path[-1]]
            else:
                node[path[-1]] = value(node[path[-1]]) if callable(value) else value
        return mutate

    def key_of(path):
        s = ""
        for k in path:
            s += f"[{k}]" if isinstance(k, int) else (f".{k}" if s else str(k))
        return s

    seen = set()

    def add(owner, case):
        """One case per schema field and kind (the three scales' sizes share their fields)."""
        kind = (owner, case[0].rsplit(":", 1)[1])
        if kind not in seen:
            seen.add(kind)
            found.append(case)

    def walk(tp, data, path, meta, owner):
        origin = typing.get_origin(tp)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            fields = {f.name: f for f in dataclasses.fields(tp)}
            for k, v in data.items():
                walk(hints[k], v, path + [k], dict(fields[k].metadata), (tp, k))
            return
        if origin is dict:
            keys = meta.get("keys")
            if keys is not None:
                add(owner, (f"{key_of(path)}:unknown-key", setter(path, lambda d: {**d, "bogus_key": next(iter(d.values()))}),
                              key_of(path), "unknown key 'bogus_key'"))
                if meta.get("all_keys") and data:
                    first = next(iter(data))
                    add(owner, (f"{key_of(path)}:deleted-key", setter(path + [first], _DELETE),
                                  key_of(path), f"key '{first}' missing"))
            for k, v in data.items():
                walk(typing.get_args(tp)[1], v, path + [k], meta, owner)
            return
        if origin is list:
            if meta.get("min_items"):
                add(owner, (f"{key_of(path)}:empty", setter(path, []), key_of(path), "expected at least"))
            if meta.get("unique") and data:
                add(owner, (f"{key_of(path)}:repeated", setter(path, lambda v: v + v[:1]), key_of(path),
                              "expected distinct entries"))
            if data:
                walk(typing.get_args(tp)[0], data[0], path + [0], meta, owner)
            return
        key = key_of(path)
        if tp is bool:
            add(owner, (f"{key}:int-for-bool", setter(path, 2), key, "expected true or false"))
        elif tp in (int, float):
            add(owner, (f"{key}:bool-for-number", setter(path, True), key,
                          "expected an integer" if tp is int else "expected a number"))
            if meta.get("choices") is None:
                for bad, phrase in _below(meta, tp):
                    add(owner, (f"{key}:{bad}", setter(path, bad), key, phrase))

    walk(schema, raw, [], {}, None)
    found.append(("top:unknown-key", lambda d: d.update(bogus_key=1), "bogus_key", "unknown key 'bogus_key'"))
    hints = typing.get_type_hints(schema)
    nested = next(k for k in raw if dataclasses.is_dataclass(hints[k]))
    found.append((f"{nested}:unknown-key", lambda d: d[nested].update(bogus_key=1), nested,
                  "unknown key"))
    return found


_DELETE = object()
CASES = [(paper, *c) for paper in PAPERS for c in cases(paper)]
# The first case of each kind in each paper also goes through `python -m hrlzoo.pipeline.check`
# (which reads every file: all of them would take minutes).
THROUGH_CHECK = {next(f"{p}:{c}" for p, c, *_ in CASES if p == paper and c.rsplit(":", 1)[1] == kind)
                 for paper, kind in {(p, c.rsplit(":", 1)[1]) for p, c, *_ in CASES}}


def write(tmp: Path, paper: str, data) -> Path:
    shutil.copytree(ROOT / "params", tmp / "params", dirs_exist_ok=True)
    target = tmp / "params" / f"{paper}.yaml"
    target.write_text("" if data is None else yaml.safe_dump(data, sort_keys=False))
    return target


def assert_one_line(msg: str, paper: str, key: str, phrase: str) -> None:
    assert "\n" not in msg.strip(), msg
    assert msg.startswith(f"params/{paper}.yaml: "), msg
    assert key in msg and phrase in msg, (key, phrase, msg)


def test_every_paper_has_many_cases():
    for paper in PAPERS:
        n = sum(1 for c in CASES if c[0] == paper)
        assert n >= 20, (paper, n)


@pytest.mark.parametrize("paper,case,mutate,key,phrase", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_bad_value_stops_with_one_line(tmp_path, monkeypatch, capsys, paper, case, mutate, key, phrase):
    data = copy.deepcopy(read_yaml(ROOT / "params" / f"{paper}.yaml"))
    mutate(data)
    write(tmp_path, paper, data)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError) as e:
        load_params(paper, schema_of(paper))
    assert_one_line(str(e.value), paper, key, phrase)
    if f"{paper}:{case}" in THROUGH_CHECK:
        assert check.main([]) == 2
        assert_one_line(capsys.readouterr().err.removeprefix("error: "), paper, key, phrase)


@pytest.mark.parametrize("paper", PAPERS)
def test_empty_file_names_the_file(tmp_path, monkeypatch, paper):
    write(tmp_path, paper, None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError, match=rf"^params/{paper}\.yaml: the file is empty"):
        load_params(paper, schema_of(paper))


def test_committed_params_are_valid():
    assert set(check_all_ok := check.check_all(ROOT)) == set(PAPERS) and check_all_ok


def test_every_numeric_knob_declares_its_range():
    """So a size list cannot take 0 or -4 by omission (as OTA's `hidden` could): every int or
    float knob, alone or in a list or dict, declares gt/ge/lt/le or choices."""
    missing = []

    def walk(tp, seen):
        if tp in seen:
            return
        seen.add(tp)
        hints = typing.get_type_hints(tp)
        for f in dataclasses.fields(tp):
            leaf = _leaf(hints[f.name])
            if dataclasses.is_dataclass(leaf):
                walk(leaf, seen)
            elif leaf in (int, float) and not any(f.metadata.get(k) is not None
                                                  for k in ("gt", "ge", "lt", "le", "choices")):
                missing.append(f"{tp.__module__}.{tp.__name__}.{f.name}")
    for paper in PAPERS:
        walk(schema_of(paper), set())
    assert not missing, missing


def first_stage(paper: str):
    """(module, args, outputs) of the paper's first stage in dvc.yaml."""
    from hrlzoo.pipeline.dag import dvc_stages

    spec = next(s for s in dvc_stages(ROOT) if s.cmd.split()[2].startswith(f"stages.{paper}."))
    _, _, module, *args = spec.cmd.split()
    return module, args, spec.outs


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("bad", ["bool", "cuda"])
def test_the_stage_itself_exits_2_and_leaves_the_previous_output(tmp_path, monkeypatch, capsys, paper, bad):
    import torch

    if bad == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible: device: cuda is valid here")
    data = copy.deepcopy(read_yaml(ROOT / "params" / f"{paper}.yaml"))
    if bad == "bool":
        data["seeds"] = [True]
        key, phrase = "seeds[0]", "expected an integer"
    else:
        data["device"] = "cuda"
        key, phrase = "device", "no CUDA device is visible"
    write(tmp_path, paper, data)
    monkeypatch.chdir(tmp_path)
    module, args, outs = first_stage(paper)
    for out in outs:  # the last good artifact, which must survive
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "previous.txt").write_text("last good")
    code = importlib.import_module(module).main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert_one_line(err.removeprefix("error: "), paper, key, phrase)
    for out in outs:
        assert sorted(p.name for p in Path(out).iterdir()) == ["previous.txt"]


@pytest.mark.parametrize("paper", PAPERS)
def test_a_missing_input_names_it_and_its_stage(tmp_path, monkeypatch, capsys, paper):
    """The paper's report stage in a repository whose artifacts were never built: exit 2 and one
    line naming the missing input and the stage that writes it (not a traceback)."""
    import subprocess

    from hrlzoo.pipeline.dag import dvc_stages

    for name in ("dvc.yaml", "params"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text((ROOT / ".dvc" / "config").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    specs = dvc_stages(tmp_path)
    report = next(s for s in specs if s.name == f"{paper}_report")
    writers = {o: s.name for s in specs for o in s.outs}
    _, _, module, *args = report.cmd.split()
    code = importlib.import_module(module).main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    line = err[-1][err[-1].index("error: "):]  # (after a progress bar's last update)
    assert line.startswith("error: ") and ": input " in line, line
    missing = line.split(" input ", 1)[1].split(" is missing", 1)[0]
    assert missing in report.deps, (missing, report.deps)
    assert f"stage {writers[missing]} writes it" in line, line
    assert not any(l.startswith("Traceback") for l in err), err
