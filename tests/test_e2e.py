"""End to end, from a clean clone, every paper at `smoke` scale: the whole DAG through
`dvc repro`, the same DAG through `snakemake --cores 2` and through a real SLURM cluster (same
bytes, then `dvc commit -f` leaves `dvc status` clean), and parameter changes that rerun only
the stages that depend on them."""

import hashlib
import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, ROOT, clone_worktree, env_with_venv, run, smoke_everywhere
from hrlzoo.pipeline.dag import CHECK_MARKER, dvc_stages

pytestmark = pytest.mark.e2e


def digest_tree(root: Path, rel: str) -> dict[str, str]:
    """md5 of every file under an output (file or folder), Snakemake's marker excluded."""
    p = root / rel
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    return {str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest()
            for f in files if f.name != ".snakemake_timestamp"}


def outputs(repo: Path) -> list[str]:
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return sorted({o["path"] for st in lock["stages"].values() for o in st.get("outs", [])})


SNAKEMAKE_TEST = "test_snakemake_gives_the_same_bytes_and_dvc_commit_is_clean"
_BESIDE: dict = {}  # the Snakemake run started beside `dvc repro`: its clone, process and log


@pytest.fixture(scope="module")
def dvc_repo(request, tmp_path_factory):
    """The whole smoke DAG through `dvc repro`. DVC runs one single-threaded stage at a time,
    so when the Snakemake test is selected its run (`--cores 1`, another clone) goes on the
    other core at the same time instead of after."""
    repo = clone_worktree(tmp_path_factory.mktemp("dvc") / "repo")
    smoke_everywhere(repo)
    if any(item.name == SNAKEMAKE_TEST for item in request.session.items):
        snake = clone_worktree(tmp_path_factory.mktemp("snakemake") / "repo")
        smoke_everywhere(snake)
        log = open(snake.parent / "snakemake.log", "w")
        proc = subprocess.Popen("snakemake --cores 1", cwd=snake, shell=True, env=env_with_venv(),
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        _BESIDE.update(repo=snake, proc=proc, log=log)
        request.addfinalizer(lambda: proc.poll() is None and proc.kill())
    run("dvc repro", cwd=repo, timeout=1500)
    run("git add -A && git -c user.name=t -c user.email=t@e commit -q -m smoke-results", cwd=repo)
    return repo


@pytest.fixture(scope="module")
def snakemake_repo(dvc_repo):
    """The clone that `snakemake` rebuilt beside `dvc repro` (see `dvc_repo`), once it is done."""
    rc = _BESIDE["proc"].wait(timeout=1500)
    _BESIDE["log"].close()
    log = (_BESIDE["repo"].parent / "snakemake.log").read_text()
    assert rc == 0, f"snakemake exited {rc}\n{log[-4000:]}"
    return _BESIDE["repo"]


PAPERS = sorted(p.parent.name for p in (ROOT / "stages").glob("*/claims.yaml"))


@pytest.mark.parametrize("paper", PAPERS)
def test_dvc_repro_writes_report_with_a_verdict_for_every_claim(dvc_repo, paper):
    import yaml

    from hrlzoo.pipeline.claims import VERDICTS

    declared = yaml.safe_load((dvc_repo / f"stages/{paper}/claims.yaml").read_text())
    claims, gates = declared.get("claims") or [], declared.get("gates") or []
    metrics = json.loads((dvc_repo / f"reports/{paper}/metrics.json").read_text())
    assert metrics["scale"] == "smoke"
    assert set(metrics["claims"]) == {c["id"] for c in claims}
    assert set(metrics["gates"]) == {g["id"] for g in gates}
    for c in [*metrics["claims"].values(), *metrics["gates"].values()]:
        assert c["verdict"] in VERDICTS and c["registered"] in ("before-results", "post-hoc")
        assert isinstance(c["n_method"], int)
        assert c["interval"] in ("", "paired t", "Welch t") or c["interval"].startswith("one-sample t")
    report = (dvc_repo / f"reports/{paper}/report.md").read_text()
    for c in [*claims, *gates]:
        assert c["id"] in report
    assert "## Gates" in report and "How the gates and claims were declared" in report
    assert (dvc_repo / f"reports/{paper}/seeds.csv").read_text().count("\n") > 1
    assert "Deviations" in report
    assert list((dvc_repo / f"reports/{paper}/figures").glob("*.png"))
    assert paper in (dvc_repo / "reports/README.md").read_text()
    status = run("dvc status", cwd=dvc_repo).stdout
    assert "up to date" in status, status


def test_snakemake_gives_the_same_bytes_and_dvc_commit_is_clean(dvc_repo, snakemake_repo):
    repo = snakemake_repo
    for out in outputs(dvc_repo):
        assert digest_tree(repo, out) == digest_tree(dvc_repo, out), out
    run("dvc commit -f", cwd=repo)
    status = run("dvc status", cwd=repo).stdout
    assert "up to date" in status, status
    lock_a = (dvc_repo / "dvc.lock").read_text()
    lock_b = (repo / "dvc.lock").read_text()
    assert lock_a == lock_b


def readme_slurm_commands() -> list[str]:
    """The command lines of the README's SLURM section (the block after its marker)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- slurm-commands", 1)[1].split("```", 2)[1]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def load_cluster_helper():
    spec = importlib.util.spec_from_file_location("slurm_test_cluster", ROOT / "tests/slurm/cluster.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lock_entries(repo: Path, prefix: str) -> dict:
    import yaml

    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {k: v for k, v in stages.items() if k.startswith(prefix)}


@pytest.mark.slurm
def test_readme_slurm_commands_run_a_paper_on_a_real_cluster(dvc_repo, tmp_path):
    """The README's SLURM lines with PAPER=heron (the whole DAG's equality across engines is
    the Snakemake test's; here every HERON stage goes through sbatch, srun and sacct)."""
    cluster = load_cluster_helper()
    ok, why = cluster.can_run_cluster()
    if not ok:
        pytest.skip(why)
    repo = clone_worktree(tmp_path / "repo")
    smoke_everywhere(repo)
    # one stage (heron_labels) asks for a GPU, to see the request reach sbatch and the fake GPU
    # node accept it: its meta line, the first such line after the stage's name
    dvcyaml = repo / "dvc.yaml"
    text = dvcyaml.read_text()
    marker = "      snakemake: {threads: 1, mem_mb: 2000, runtime: 10}"
    start = text.index("\n  heron_labels:") + 1
    at = text.index(marker, start)
    assert not re.search(r"\n  [a-z]\w*:", text[start:at])  # still inside heron_labels
    dvcyaml.write_text(text[:at] + marker[:-1] + ", gpu: 1}" + text[at + len(marker):])
    heron_stages = [s for s in dvc_stages(repo) if s.name.startswith("heron_") or s.name == "params_check"]
    with cluster.slurm_cluster(tmp_path / "cl") as c:
        env_extra = " ".join(f"{k}={v}" for k, v in c["env"].items())
        logs = []
        for line in readme_slurm_commands():
            cmd = (line.replace("PARTITION", c["partition"]).replace("ACCOUNT", c["account"])
                   .replace("PAPER", "heron"))
            if cmd.startswith("snakemake"):  # test-only: poll job states every 2 s, print sbatch calls
                cmd += " --slurm-init-seconds-before-status-checks 2 --verbose"
            res = run(f"env {env_extra} {cmd}", cwd=repo, timeout=1500)
            logs.append(res.stdout + res.stderr)
        calls = [ln for ln in logs[0].splitlines() if ln.startswith("sbatch call:")]
        assert len(calls) == len(heron_stages), calls  # one job per stage
        train = next(cl for cl in calls if "rule_heron_train_prefs__pendulum_heron" in cl)
        assert "--cpus-per-task=1" in train and "--mem 2000" in train and "-t 30" in train, train
        labels = next(cl for cl in calls if "rule_heron_labels" in cl)
        assert "--gpus=1" in labels and "-t 10" in labels, labels
        test_only = run(f"env {env_extra} sbatch --test-only --gpus=1 -p {c['partition']} -A {c['account']} "
                        "--wrap hostname", cwd=repo)
        assert "to start at" in test_only.stderr
        assert "up to date" in logs[-1], logs[-1]
    for out in sorted({o for s in heron_stages for o in s.outs}):
        assert digest_tree(repo, out) == digest_tree(dvc_repo, out), out
    assert lock_entries(repo, "heron_") == lock_entries(dvc_repo, "heron_")
    assert lock_entries(repo, "ota_") == lock_entries(ROOT, "ota_")  # only the paper asked for ran


def readme_block(marker: str) -> list[str]:
    """The command lines of the README block after `<!-- marker`."""
    text = (ROOT / "README.md").read_text()
    block = text.split(f"<!-- {marker}", 1)[1].split("```", 2)[1]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


# `make` in a clone: the clone's .venv is this one, already installed (test-only: `-o` keeps make
# from reinstalling it when a test's clone has newer pyproject/lock mtimes)
MAKE_FLAGS = "-o .venv/.installed"


def with_venv(repo: Path) -> Path:
    (repo / ".venv").symlink_to(BIN.parent)
    return repo


def started_stages(out: str) -> set[str]:
    return set(re.findall(r"started (\S+) \(last run", out))


def test_readme_first_line_builds_one_paper_with_a_plan_and_progress(dvc_repo, tmp_path):
    """The README's first command in a fresh clone (every paper at smoke): a plan with expected
    times, progress over the DAG, only HERON's stages (and the check and summary) run, side by
    side, the bytes of `dvc repro`, and `dvc status` clean."""
    line = readme_block("readme-first")[0].split("#")[0].strip()
    assert line == "make repro PAPER=heron", line
    repo = with_venv(clone_worktree(tmp_path / "repo"))
    smoke_everywhere(repo)
    res = run(line.replace("make ", f"make {MAKE_FLAGS} ", 1), cwd=repo, timeout=1500)
    out = res.stdout
    heron = {s.name for s in dvc_stages(repo) if s.name.startswith("heron_")}
    assert re.search(rf"\[repro\] {len(heron) + 2} of {len(heron) + 2} stages to run", out), out
    assert "expected wall time" in out and "remaining ~" in out, out
    assert re.search(rf"{len(heron) + 2}/{len(heron) + 2} stages done", out), out
    assert started_stages(out) == heron | {"params_check", "summary"}, out
    for s in dvc_stages(repo):
        if s.name in heron:
            for o in s.outs:
                assert digest_tree(repo, o) == digest_tree(dvc_repo, o), o
    assert "up to date" in run("dvc status heron_report", cwd=repo).stdout
    timings = json.loads((repo / "reports/timings.json").read_text())
    assert set(timings["smoke"]) >= {s.cmd for s in dvc_stages(repo) if s.name in heron}, timings
    again = run(line.replace("make ", f"make {MAKE_FLAGS} ", 1), cwd=repo).stdout
    assert "stages are up to date: nothing to run" in again, again


def test_readme_shared_cache_lets_a_second_clone_reuse_the_first_ones_results(dvc_repo, tmp_path):
    """A second clone pointed at the first one's cache (the README's lines) trains nothing."""
    second = tmp_path / "second"
    run(f"git clone -q {dvc_repo} {second}", cwd=tmp_path)
    with_venv(second)
    logs = []
    for line in readme_block("readme-shared-cache"):
        cmd = line.replace("/shared/hrlzoo-cache", str(dvc_repo / ".dvc" / "cache"))
        logs.append(run(cmd.replace("make ", f"make {MAKE_FLAGS} ", 1), cwd=second, timeout=600).stdout)
    assert not started_stages(logs[-1]), logs[-1]
    assert "nothing to run" in logs[-1], logs[-1]
    for s in dvc_stages(second):
        if s.name.startswith("heron_"):
            for o in s.outs:
                assert digest_tree(second, o) == digest_tree(dvc_repo, o), o


def test_readme_experiments_on_a_fresh_clone_run_only_their_paper(tmp_path):
    """The README's experiment lines, verbatim, in a fresh clone at the committed (cpu) scale:
    the first builds HERON's upstream at smoke and nothing of another paper; the second reruns
    only the reward-model stages; both show in `dvc exp show`."""
    repo = clone_worktree(tmp_path / "repo")
    lines = [ln[2:] for ln in readme_block("readme-experiments") if ln.startswith("$ dvc exp run")]
    assert len(lines) == 2 and all(" heron_report " in ln for ln in lines), lines
    ran = []
    for line in lines:  # (dvc exp run commits: the test's git identity through the environment)
        out = run(f"env {GIT_IDENTITY} {line}", cwd=repo, timeout=1500).stdout
        ran.append(set(re.findall(r"Running stage '([^']+)'", out)))
    assert ran[0] and all(s.startswith("heron_") or s == "params_check" for s in ran[0]), ran[0]
    assert ran[1] and {s for s in ran[1] if s != "params_check"} <= (
        {s.name for s in dvc_stages(repo) if s.name.startswith(("heron_train_prefs@", "heron_traffic_prefs@"))}
        | {"heron_report"}), ran[1]  # the stages with a reward model: classic and traffic
    show = run("dvc exp show --md --drop '.*' --keep 'Experiment'", cwd=repo).stdout
    assert "[smoke]" in show and "[smoke-relabel]" in show, show


GIT_IDENTITY = "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e"


def test_exp_run_without_a_git_identity_stops_before_anything_trains(tmp_path):
    repo = clone_worktree(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    res = run("env -u GIT_AUTHOR_NAME -u GIT_AUTHOR_EMAIL -u GIT_COMMITTER_NAME -u GIT_COMMITTER_EMAIL "
              f"HOME={home} GIT_CONFIG_NOSYSTEM=1 dvc exp run heron_report -S params/heron.yaml:scale=smoke", cwd=repo, check=False, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "git config --global user.name" in out, out
    assert set(re.findall(r"Running stage '([^']+)'", out)) == {"params_check"}, out


def test_a_bad_params_file_stops_dvc_repro_before_any_output_is_touched(dvc_repo):
    """A typo in a key no stage tracks, and a wrong type in one that stages do: `dvc repro`
    stops at params_check with the one line; every artifact keeps its bytes."""
    repo = dvc_repo
    path = repo / "params/heron.yaml"
    good = path.read_text()
    artifacts = [o for o in outputs(repo) if o != CHECK_MARKER]  # (the check's own marker comes back)
    before = {o: digest_tree(repo, o) for o in artifacts}
    try:
        for bad, expected in ((good.replace("\nlabel_pairs:", "\nlabel_pairz:"), "unknown key 'label_pairz'"),
                              (good.replace("  twin_q: true", "  twin_q: 2"), "td3.twin_q = 2: expected true or false")):
            assert bad != good
            path.write_text(bad)
            res = run("dvc repro", cwd=repo, check=False)
            assert res.returncode != 0
            assert f"error: params/heron.yaml: " in res.stderr and expected in res.stderr, res.stderr
            assert set(re.findall(r"Running stage '([^']+)'", res.stdout)) == {"params_check"}, res.stdout
            assert {o: digest_tree(repo, o) for o in artifacts} == before
    finally:
        path.write_text(good)
    run("dvc repro params_check", cwd=repo)
    assert "up to date" in run("dvc status", cwd=repo).stdout


def test_a_killed_snakemake_run_recovers_with_the_readme_line(dvc_repo, tmp_path):
    """kill -9 of a whole `snakemake --cores 2` run: the plain command then refuses (lock), the
    README's one line recovers, and the result has the bytes of `dvc repro`."""
    import signal
    import time

    repo = clone_worktree(tmp_path / "repo")
    smoke_everywhere(repo)
    target = "reports/heron/metrics.json"
    log = open(tmp_path / "snakemake.log", "w")
    proc = subprocess.Popen(f"snakemake --cores 2 {target}", cwd=repo, shell=True, env=env_with_venv(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 600
    while "Finished jobid" not in (tmp_path / "snakemake.log").read_text():  # killed mid-DAG, jobs running
        assert time.time() < deadline and proc.poll() is None, (tmp_path / "snakemake.log").read_text()[-3000:]
        time.sleep(0.5)
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    plain = run(f"snakemake --cores 2 {target}", cwd=repo, check=False)  # what the user tries first
    said = plain.stdout + plain.stderr
    assert plain.returncode != 0 and ("LockException" in said or "IncompleteFilesException" in said), said[-2000:]
    (line,) = readme_block("snakemake-recovery")
    run(line + f" {target}", cwd=repo, timeout=1500)
    for s in dvc_stages(repo):
        if s.name.startswith("heron_"):
            for o in s.outs:
                assert digest_tree(repo, o) == digest_tree(dvc_repo, o), o


def test_param_change_reruns_only_downstream_and_metrics_diff_shows_it(dvc_repo):
    """Runs last in this module: it changes `dvc_repo`, which the tests above compare against."""
    repo = dvc_repo
    text = (repo / "params/heron.yaml").read_text()
    (repo / "params/heron.yaml").write_text(text.replace("  batches_per_refit: 16", "  batches_per_refit: 4"))
    status = run("dvc status", cwd=repo).stdout
    changed = set(re.findall(r"^(\S+):\s*$", status, flags=re.M)) - {"params_check"}  # (any params edit)
    assert changed, status
    prefs = ("heron_train_prefs@", "heron_traffic_prefs@")  # the stages with a reward model
    assert all(s.startswith(prefs) for s in changed), changed
    # make repro's plan agrees: params_check re-runs, but what it guards is judged on its own
    plan = run(f"{BIN}/python -m hrlzoo.pipeline.repro --dry heron_report", cwd=repo).stdout
    planned = set(re.findall(r"^  (\S+)\s+\S+\s+(?:smoke|cpu|paper|any)$", plan, flags=re.M))
    assert planned == {"params_check", "heron_report"} | changed, plan
    out = run("dvc repro", cwd=repo).stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert {s for s in ran if s.startswith(("heron_train", "heron_traffic"))} == changed
    assert not any(s.startswith(("heron_train_reward", "heron_traffic_reward")) or s == "heron_labels" for s in ran)
    diff = run("dvc metrics diff", cwd=repo).stdout
    changed_rows = [line for line in diff.splitlines() if line.startswith("reports/heron/metrics.json")]
    assert any(".rlhf." in r or ".heron." in r for r in changed_rows), diff
    assert not any(".true_reward." in r or ".misweighted." in r for r in changed_rows), diff


def test_a_high_level_param_reruns_only_the_high_levels_of_ota(dvc_repo):
    """`agent.high_alpha` reaches the high-level actors, their evaluation and the report, and
    nothing upstream: the values, the low actors and the datasets stay cached."""
    repo = dvc_repo
    p = repo / "params/ota.yaml"
    text = p.read_text()
    assert text.count("  high_alpha: 3.0") == 1
    p.write_text(text.replace("  high_alpha: 3.0", "  high_alpha: 1.0"))
    status = run("dvc status", cwd=repo).stdout
    changed = set(re.findall(r"^(\S+):\s*$", status, flags=re.M))
    assert changed == {"params_check"} | {f"ota_high_policy@{m}" for m in ("medium", "large", "giant")}, changed
    out = run("dvc repro", cwd=repo).stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert changed <= ran
    assert all(s.startswith(("params_check", "ota_high_policy@", "ota_evaluate@", "ota_report", "summary"))
               for s in ran), ran
