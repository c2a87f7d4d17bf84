"""Params validation: a bad params file stops a stage with exit 2 and one line naming the
file, the key and what was expected, before anything is written."""

import re
import shutil
from pathlib import Path

import pytest

from hrlzoo.pipeline.params import ParamsError, load_params
from stages.heron.params import HeronParams
from stages.heron.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def params_dir(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    shutil.copy(ROOT / "params" / "heron.yaml", tmp_path / "params" / "heron.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "params" / "heron.yaml"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_committed_params_are_valid():
    p = load_params("heron", HeronParams, root=ROOT)
    assert p.scale in ("smoke", "cpu", "paper")
    assert set(p.tasks) == {"pendulum", "pendulum_x100", "mountaincar", "mountaincar_official"}
    assert p.sizes["paper"].pendulum.total_steps == 50_000  # official ddpg_rm.py default


@pytest.mark.parametrize("old,new,expected", [
    ("  batch: 16\n", "  batch: 16\n  bogus: 3\n", r"unknown key 'reward_model\.bogus'"),
    ("\n  gamma: 0.99", "\n  gamma: ninety", r"td3\.gamma = 'ninety': expected a number"),
    ("\n  gamma: 0.99", "\n  gamma: 1.5", r"td3\.gamma = 1\.5: expected a number < 1"),
    ("scale: cpu", "scale: huge", r"scale = 'huge': expected one of 'smoke', 'cpu', 'paper'"),
    ("    signs: [1, -1]", "    signs: [1, 0]", r"tasks\.mountaincar\.signs\[1\] = 0: expected one of -1, 1"),
    ("    ranking: [0, 1]   ", "    ranking: [0, 0]   ", r"tasks\.mountaincar\.ranking: expected a permutation"),
])
def test_bad_params_exit_2_with_one_line(params_dir, capsys, old, new, expected):
    edit(params_dir, old, new)
    with pytest.raises(ParamsError, match=expected):
        load_params("heron", HeronParams)
    code = train_main(["pendulum", "heron"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: params/heron.yaml: ")
    assert re.search(expected, err), err
    assert not (params_dir.parent.parent / "data").exists()  # nothing written


def test_unknown_task_argument_exits_2(params_dir, capsys):
    assert train_main(["cartpole", "heron"]) == 2
    assert "no task 'cartpole'" in capsys.readouterr().err
