"""One declaration, two engines: the Snakemake DAG equals DVC's (same stages, same edges)."""

import re
from pathlib import Path

from conftest import ROOT, run
from hrlzoo.pipeline.dag import CHECK_MARKER, StageSpec, dvc_edges, dvc_stages


def snakemake_dag(root: Path, *flags: str) -> tuple[set[str], set[tuple[str, str]]]:
    dot = run(f"snakemake --forceall --dag {' '.join(flags)}", cwd=root).stdout
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.M))
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M)}
    nodes = set(names.values()) - {"all"}
    return nodes, {(a, b) for a, b in edges if "all" not in (a, b)}


def test_snakemake_dag_equals_dvc_dag():
    specs = dvc_stages(ROOT)
    rule_of = {s.name: s.rule for s in specs}
    assert len(set(rule_of.values())) == len(specs), "two stages map to one rule name"
    dvc_nodes = set(rule_of.values())
    dvc = {(rule_of[a], rule_of[b]) for a, b in dvc_edges(ROOT)}
    nodes, edges = snakemake_dag(ROOT)
    assert nodes == dvc_nodes
    assert edges == dvc
    assert len(edges) > 10  # HERON alone has more than ten edges


def test_every_stage_waits_for_the_params_check():
    """A stage without the marker may run before `params_check` (DVC orders independent
    stages as it likes): a bad params file would then fail inside it, not at the check."""
    specs = dvc_stages(ROOT)
    check = [s.name for s in specs if s.outs == [CHECK_MARKER]]
    assert check == ["params_check"]
    assert [s.name for s in specs if s.name != "params_check" and CHECK_MARKER not in s.deps] == []


def test_slurm_profile_plans_the_whole_dag():
    res = run("snakemake --profile profiles/slurm -n --forceall "
              "--default-resources slurm_partition=debug slurm_account=test", cwd=ROOT)
    total = re.search(r"^total\s+(\d+)", res.stdout, flags=re.M)
    assert total and int(total.group(1)) == len(dvc_stages(ROOT)) + 1  # + rule all


def test_rule_names_and_resources():
    s = StageSpec(name="heron_train_prefs@pendulum_x100-heron", cmd="x", deps=[], outs=[])
    assert s.rule == "heron_train_prefs__pendulum_x100_heron"
    specs = {s.name: s for s in dvc_stages(ROOT)}
    heron = specs["heron_train_prefs@pendulum-heron"]
    assert heron.cmd == "python -m stages.heron.train pendulum heron"
    assert heron.threads == 1 and heron.resources["mem_mb"] > 0 and heron.resources["runtime"] > 0
    assert "reward_model" in heron.param_values["params/heron.yaml"]
    assert "reward_model" not in specs["heron_train_reward@pendulum-true_reward"].param_values["params/heron.yaml"]


def test_heron_report_reads_exactly_the_runs_the_train_stages_write():
    specs = dvc_stages(ROOT)
    report = next(s for s in specs if s.name == "heron_report")
    args = report.cmd.split()[3:]
    cut = args.index("--traffic")
    for folder, prefix, given in (("runs", "heron_train", args[:cut]), ("traffic", "heron_traffic", args[cut + 1:])):
        deps = [d.removeprefix(f"data/heron/{folder}/") for d in report.deps if d.startswith(f"data/heron/{folder}/")]
        outs = [o.removeprefix(f"data/heron/{folder}/") for s in specs if s.name.startswith(prefix) for o in s.outs]
        assert given == deps, folder
        assert sorted(given) == sorted(outs), folder


def test_stage_names_do_not_depend_on_the_current_directory(tmp_path, monkeypatch):
    """DVC's own `addressing` is relative to the cwd (`../repo/dvc.yaml:name` from elsewhere);
    ours is relative to the repository, so a test or a Snakefile run from another directory
    sees the same names."""
    here = sorted(s.name for s in dvc_stages(ROOT))
    monkeypatch.chdir(tmp_path)
    assert sorted(s.name for s in dvc_stages(ROOT)) == here
    assert {a for edge in dvc_edges(ROOT) for a in edge} <= set(here)
    assert "heron_labels" in here


def test_an_edit_of_another_scales_sizes_stales_nothing(tmp_path):
    """HBPO's and Cog-Rethinker's stages track `sizes.${scale}` (dvc.yaml stage vars): at `cpu`
    an edit of `sizes.smoke` changes no tracked value, for DVC and for the Snakefile's rule
    params alike (both read dvc_stages); a change of scale moves every key to that scale."""
    import shutil
    import subprocess

    from conftest import set_param

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(ROOT / "params", tmp_path / "params")
    subprocess.run("dvc init --no-scm -q", cwd=tmp_path, shell=True, check=True)
    papers = ("hbpo", "cog_rethinker")

    def tracked():
        return {s.name: s.param_values for s in dvc_stages(tmp_path) if s.name.startswith(papers)}

    at_cpu = tracked()
    keys = {k for v in at_cpu.values() for f in v.values() for k in f if k.startswith("sizes")}
    assert keys and all(k.startswith("sizes.cpu") for k in keys), keys
    for paper in papers:
        p = tmp_path / "params" / f"{paper}.yaml"
        text = p.read_text()
        i = text.index("\n  smoke:")
        p.write_text(text[:i] + text[i:].replace("steps: 2,", "steps: 3,", 1))
        assert p.read_text() != text
    assert tracked() == at_cpu
    for paper in papers:
        set_param(tmp_path, paper, "scale", "smoke")
    at_smoke = tracked()
    keys = {k for v in at_smoke.values() for f in v.values() for k in f if k.startswith("sizes")}
    assert keys and all(k.startswith("sizes.smoke") for k in keys), keys
    assert at_smoke != at_cpu
