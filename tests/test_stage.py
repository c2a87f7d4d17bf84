"""The stage platform: atomic outputs under SIGKILL, the NaN/inf guard, exit codes."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hrlzoo.pipeline.stage import commit_outputs, partial_path

TOY = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from hrlzoo.pipeline.params import Common
    from hrlzoo.pipeline.stage import run_stage

    MODE = sys.argv[1]

    def body(ctx):
        """A toy stage."""
        d = ctx.out("out/result")
        d.mkdir()
        (d / "a.txt").write_text("first half")
        if MODE == "hang":
            Path("started").write_text("yes")
            time.sleep(60)
        if MODE == "nan":
            ctx.guard("loss", float("nan"), 7)
        if MODE == "nan_logits":  # a diverged policy's logits reach the sampler at step 3
            import torch
            from hrlzoo.lm.sampler import _pick
            with ctx.progress(5, "rollouts") as bar:
                for step in range(1, 6):
                    logits = torch.zeros(2, 4) + (float("nan") if step == 3 else 0.0)
                    _pick(logits, 1.0, 1.0, None)
                    bar.update(1)
        if MODE == "unnamed_nan":  # a library guard that knows its step but not the stage
            from hrlzoo.pipeline.stage import NonFiniteError
            raise NonFiniteError("sft: loss is nan at step 5")
        (d / "b.txt").write_text("second half")
        Path("out/report.json").parent.mkdir(exist_ok=True)
        ctx.out("out/report.json").write_text("{}")

    sys.exit(run_stage("toy_stage", "toy", Common, body, [],
                       outputs=lambda a, p: ["out/result", "out/report.json"]))
''')


@pytest.fixture
def toy(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "toy.yaml").write_text("scale: smoke\nseeds: [0]\nthreads: 1\ndevice: cpu\n")
    (tmp_path / "toy.py").write_text(TOY)
    return tmp_path


def run_toy(toy, mode, **kw):
    return subprocess.run([sys.executable, "toy.py", mode], cwd=toy, capture_output=True, text=True, **kw)


def test_sigkill_leaves_no_partial_artifact_and_rerun_redoes(toy):
    proc = subprocess.Popen([sys.executable, "toy.py", "hang"], cwd=toy,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (toy / "started").exists():
        assert time.time() < deadline and proc.poll() is None, "toy stage did not start"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (toy / "out" / "result").exists()
    assert not (toy / "out" / "report.json").exists()
    assert partial_path(toy / "out" / "result").exists()  # the debris is only the hidden partial

    res = run_toy(toy, "ok")
    assert res.returncode == 0, res.stderr
    assert (toy / "out" / "result" / "b.txt").read_text() == "second half"
    assert (toy / "out" / "report.json").exists()
    assert not partial_path(toy / "out" / "result").exists()


def test_nan_guard_fails_stage_naming_stage_and_step(toy):
    res = run_toy(toy, "nan")
    assert res.returncode == 1
    assert "toy_stage: loss is nan at step 7" in res.stderr
    assert not (toy / "out" / "result").exists()
    assert not partial_path(toy / "out" / "result").exists()


@pytest.mark.parametrize("mode,expected", [
    ("nan_logits", "error: toy_stage: rollout logits are nan or inf (the policy diverged) at step 3 of "
                   "'toy_stage rollouts'"),
    ("unnamed_nan", "error: toy_stage: sft: loss is nan at step 5"),
])
def test_every_divergence_names_the_stage_and_the_step(toy, mode, expected):
    res = run_toy(toy, mode)
    assert res.returncode == 1, res.stderr
    assert expected in res.stderr.splitlines(), res.stderr
    assert "Traceback" not in res.stderr
    assert not (toy / "out" / "result").exists()


def test_rerun_replaces_older_output(toy):
    assert run_toy(toy, "ok").returncode == 0
    (toy / "out" / "result" / "stale.txt").write_text("old")
    assert run_toy(toy, "ok").returncode == 0
    assert not (toy / "out" / "result" / "stale.txt").exists()


def test_commit_requires_every_declared_output(tmp_path):
    with pytest.raises(RuntimeError, match="did not write"):
        commit_outputs([tmp_path / "never_written"])
