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
