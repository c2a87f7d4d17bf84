"""End to end, from a clean clone: HERON's smoke-scale DAG through `dvc repro`, the same DAG
through `snakemake --cores 2` (same bytes, then `dvc commit -f` leaves `dvc status` clean),
and a parameter change that reruns only the stages that depend on it."""

import hashlib
import json
import re
from pathlib import Path

import pytest

from conftest import clone_worktree, run, set_param

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


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory):
    repo = clone_worktree(tmp_path_factory.mktemp("dvc") / "repo")
    set_param(repo, "heron", "scale", "smoke")
    run("dvc repro heron_report summary", cwd=repo)
    run("git add -A && git -c user.name=t -c user.email=t@e commit -q -m smoke-results", cwd=repo)
    return repo


def test_dvc_repro_writes_report_with_a_verdict_for_every_claim(dvc_repo):
    import yaml

    claims = yaml.safe_load((dvc_repo / "stages/heron/claims.yaml").read_text())
    metrics = json.loads((dvc_repo / "reports/heron/metrics.json").read_text())
    assert set(metrics["claims"]) == {c["id"] for c in claims}
    for c in metrics["claims"].values():
        assert c["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    report = (dvc_repo / "reports/heron/report.md").read_text()
    for c in claims:
        assert c["id"] in report
    assert "Deviations" in report
    assert list((dvc_repo / "reports/heron/figures").glob("*.png"))
    assert "heron" in (dvc_repo / "reports/README.md").read_text()
    status = run("dvc status", cwd=dvc_repo).stdout
    assert "up to date" in status, status


def test_snakemake_gives_the_same_bytes_and_dvc_commit_is_clean(dvc_repo, tmp_path):
    repo = clone_worktree(tmp_path / "repo")
    set_param(repo, "heron", "scale", "smoke")
    run("snakemake --cores 2", cwd=repo)
    for out in outputs(dvc_repo):
        assert digest_tree(repo, out) == digest_tree(dvc_repo, out), out
    run("dvc commit -f", cwd=repo)
    status = run("dvc status", cwd=repo).stdout
    assert "up to date" in status, status
    lock_a = (dvc_repo / "dvc.lock").read_text()
    lock_b = (repo / "dvc.lock").read_text()
    assert lock_a == lock_b


def test_param_change_reruns_only_downstream_and_metrics_diff_shows_it(dvc_repo):
    repo = dvc_repo
    text = (repo / "params/heron.yaml").read_text()
    (repo / "params/heron.yaml").write_text(text.replace("  batches_per_refit: 16", "  batches_per_refit: 4"))
    status = run("dvc status", cwd=repo).stdout
    changed = set(re.findall(r"^(\S+):\s*$", status, flags=re.M))
    assert changed, status
    assert all(s.startswith("heron_train_prefs@") for s in changed), changed
    out = run("dvc repro heron_report summary", cwd=repo).stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert {s for s in ran if s.startswith("heron_train")} == changed
    assert not any(s.startswith("heron_train_reward") or s == "heron_labels" for s in ran)
    diff = run("dvc metrics diff", cwd=repo).stdout
    changed_rows = [line for line in diff.splitlines() if line.startswith("reports/heron/metrics.json")]
    assert any(".rlhf." in r or ".heron." in r for r in changed_rows), diff
    assert not any(".true_reward." in r or ".misweighted." in r for r in changed_rows), diff
