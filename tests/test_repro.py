"""`make repro`'s planning pieces: the recorded wall times and the schedule they estimate
(the runs themselves are end-to-end tests in test_e2e.py)."""

import json

from hrlzoo.pipeline import timings
from hrlzoo.pipeline.repro import Job, fmt, print_plan, simulate


def job(name, seconds, upstream=(), threads=1, priority=0):
    return Job(name=name, cmd=f"python -m stages.x.{name}", threads=threads, priority=priority,
               scale="smoke", upstream=set(upstream), expected=seconds)


def test_the_estimate_is_the_list_schedule_of_the_recorded_times():
    a, b, c = job("a", 10), job("b", 5, ["a"]), job("c", 7)
    assert simulate([a, b, c], cores=1) == 22  # one after another
    assert simulate([a, b, c], cores=2) == 15  # the longest chain (a, b) first, c beside it
    assert simulate([a, b, c], cores=2, done={"a"}, running={"c": 3.0}) == 5  # b: 5 s; c: 4 s left
    wide = job("w", 4, threads=2)  # a two-thread stage waits for both cores
    assert simulate([job("p", 6), wide], cores=2) == 10
    assert simulate([job("u", None), job("v", 3, ["u"])], cores=2) == 3  # never recorded: 0


def test_timings_are_recorded_per_scale_and_command(tmp_path):
    timings.record("python -m stages.x.train  a b", "smoke", 12.34, tmp_path)
    timings.record("python -m stages.x.train a b", "cpu", 300.0, tmp_path)
    timings.record("python -m stages.x.train a b", "smoke", 10.0, tmp_path)  # the last run replaces
    data = json.loads((tmp_path / timings.FILE).read_text())
    assert data == {"cpu": {"python -m stages.x.train a b": 300.0}, "smoke": {"python -m stages.x.train a b": 10.0}}
    assert timings.expected("python -m stages.x.train a b", "cpu", timings.load(tmp_path)) == 300.0
    assert timings.expected("python -m stages.x.train a b", "paper", timings.load(tmp_path)) is None
    timings.record(None, "cpu", 1.0, tmp_path)  # not started as a stage module: nothing recorded



def test_timings_of_commands_no_stage_runs_are_pruned(tmp_path):
    timings.record("python -m stages.x.train a", "cpu", 30.0, tmp_path)
    timings.record("python -m stages.x.old a", "cpu", 40.0, tmp_path)
    timings.record("python -m stages.x.old a", "smoke", 4.0, tmp_path)
    assert timings.prune(["python -m stages.x.train  a"], tmp_path) == 2
    assert timings.load(tmp_path) == {"cpu": {"python -m stages.x.train a": 30.0}}
    assert timings.prune(["python -m stages.x.train a"], tmp_path) == 0

def test_the_plan_lists_every_stage_with_its_time_and_the_total(capsys):
    jobs = [job("a", 65), job("b", None, ["a"])]
    print_plan(jobs, total_dag=5, cores=2)
    out = capsys.readouterr().out
    assert "2 of 5 stages to run, on 2 cores" in out
    assert "a" in out and "1:05" in out and "?" in out
    assert "expected wall time ~1:05 on 2 cores" in out and "1 never recorded" in out
    assert fmt(3725) == "1:02:05" and fmt(None) == "?"


def test_leftover_partials_of_killed_stages_are_removed_whatever_serves_the_rerun(tmp_path):
    from hrlzoo.pipeline.dag import StageSpec
    from hrlzoo.pipeline.repro import remove_partials
    from hrlzoo.pipeline.stage import partial_path

    spec = StageSpec(name="s", cmd="x", deps=[], outs=["data/a/run", "reports/a/metrics.json"])
    (tmp_path / "data/a/run").mkdir(parents=True)
    (tmp_path / partial_path("data/a/run")).mkdir()
    (tmp_path / partial_path("data/a/run") / "half.pt").write_text("killed")
    (tmp_path / "reports/a").mkdir(parents=True)
    (tmp_path / partial_path("reports/a/metrics.json")).write_text("{")
    assert remove_partials(tmp_path, {"s": spec}) == 2
    assert sorted(p.name for p in (tmp_path / "data/a").iterdir()) == ["run"]  # the artifact stays
    assert not list((tmp_path / "reports/a").iterdir())


def _old(root, seconds=60):
    """Every file of `root` older than the racy window (as a tree that was built a while ago)."""
    import os
    import time

    t = time.time() - seconds
    for p in root.rglob("*"):
        os.utime(p, (t, t), follow_symlinks=False)


def test_the_up_to_date_stamp_holds_only_while_nothing_it_watches_changes(tmp_path):
    from hrlzoo.pipeline import uptodate

    (tmp_path / "data/run").mkdir(parents=True)
    (tmp_path / "data/run/model.pt").write_text("w")
    (tmp_path / "data/run/__pycache__").mkdir()  # .dvcignore'd: DVC does not hash it
    (tmp_path / "params").mkdir()
    (tmp_path / "params/x.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / ".dvcignore").write_text("# comment\n__pycache__/\n*.partial\n")
    watched = ["data/run", "data/.run.partial", "missing.txt"]
    k = uptodate.key(["x_report"], [])
    _old(tmp_path)
    before = uptodate.signature(tmp_path, watched + list(uptodate.ALWAYS))
    assert before["missing.txt"] is None and "data/run/model.pt" in before
    assert not any("__pycache__" in p for p in before)
    assert uptodate.record(tmp_path, k, watched + list(uptodate.ALWAYS), before, 7)
    assert uptodate.unchanged(tmp_path, k) == 7
    assert uptodate.unchanged(tmp_path, uptodate.key([], [])) is None  # other targets: ask DVC
    (tmp_path / "data/run/__pycache__/m.pyc").write_text("ignored")
    assert uptodate.unchanged(tmp_path, k) == 7
    for change in (lambda: (tmp_path / "params/x.yaml").write_text("a: 2\n"),  # an edit
                   lambda: (tmp_path / "data/run/extra.pt").write_text("new"),  # a file added
                   lambda: (tmp_path / "data/.run.partial").mkdir(),  # a killed run's leftover
                   lambda: (tmp_path / "data/run/model.pt").unlink()):  # an output removed
        _old(tmp_path)
        before = uptodate.signature(tmp_path, watched + list(uptodate.ALWAYS))
        assert uptodate.record(tmp_path, k, watched + list(uptodate.ALWAYS), before, 7)
        change()
        assert uptodate.unchanged(tmp_path, k) is None
    # a file younger than the racy window (its next edit could keep its mtime): nothing recorded
    uptodate.forget(tmp_path)
    (tmp_path / "params/x.yaml").write_text("a: 3\n")
    before = uptodate.signature(tmp_path, watched + list(uptodate.ALWAYS))
    assert not uptodate.record(tmp_path, k, watched + list(uptodate.ALWAYS), before, 7)
    assert uptodate.unchanged(tmp_path, k) is None


def test_make_repro_says_nothing_to_run_without_dvc_only_when_dvc_said_so(tmp_path, monkeypatch, capsys):
    """A one-stage DVC repository: the first no-op `make repro` asks DVC and records its verdict;
    the second answers from the stamp without opening DVC; an edited dependency goes to DVC."""
    import subprocess

    import pytest

    from hrlzoo.pipeline import check, repro, uptodate

    def sh(cmd):
        subprocess.run(cmd, cwd=tmp_path, shell=True, check=True, capture_output=True)

    (tmp_path / "in.txt").write_text("1")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  a:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n")
    sh("git init -q && dvc init -q && dvc repro -q")
    _old(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(check, "main", lambda argv: 0)  # no params files in this repository
    assert repro.main([]) == 0
    assert "all 1 stages are up to date: nothing to run\n" in capsys.readouterr().out
    assert (tmp_path / uptodate.FILE).exists()

    def no_dvc(*a, **k):
        raise AssertionError("DVC asked")

    monkeypatch.setattr(repro, "plan", no_dvc)
    assert repro.main([]) == 0
    assert "no file DVC looks at changed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="DVC asked"):
        repro.main(["--full"])
    (tmp_path / "in.txt").write_text("2")
    with pytest.raises(AssertionError, match="DVC asked"):
        repro.main([])
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(check, "main", lambda argv: 0)
    assert repro.main(["--dry"]) == 0
    assert "1 of 1 stages to run" in capsys.readouterr().out
    assert not (tmp_path / uptodate.FILE).exists()
