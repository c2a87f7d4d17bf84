"""One declaration, two engines: the Snakemake DAG equals DVC's (same stages, same edges)."""

import re
from pathlib import Path

from conftest import ROOT, run
from hrlzoo.pipeline.dag import StageSpec, dvc_edges, dvc_stages


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
