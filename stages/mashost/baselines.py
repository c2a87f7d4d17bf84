"""Stage mashost_baselines: the fixed topologies and the brute-force oracle (OUR READING).

    python -m stages.mashost.baselines

Validation (queries of `test_seed` + valid salt, Monte Carlo, `oracle_samples` runs per graph
and cell): every graph of at most `oracle_nodes` nodes over the role pool (any DAG in insertion
order) on every (family, difficulty) cell; the oracle's graph of a cell is its most accurate one
(the simulator's queries of one cell are exchangeable, so the best graph per query is the best
per cell). The fixed topologies (single agent, self-consistency with 5 votes, chain, star,
complete over the team solver -> math -> programmer -> retriever -> verifier, a random graph) are
scored the same way; `best_fixed` is the one with the best mean validation accuracy, and the best
fixed topology of each family is recorded (the gate: it must differ between families).

Test: every test query, `eval_repeats` executions, once per seed of params (the seeds are
evaluation-sampling seeds here: these are fixed graphs, single models in the claims).

Writes data/mashost/baselines/: eval.parquet (one row per execution), choice.json, queries.parquet.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.mashost import common, sim
from stages.mashost.params import MasHostParams, sizes, world


def body(ctx: Stage) -> None:
    """Score every small graph and the fixed topologies on validation, evaluate them on the test queries."""
    import polars as pl

    p: MasHostParams = ctx.params
    s = sizes(p)
    w = world(p)
    vrng = np.random.default_rng([p.test_seed, common.SALT["valid"]])
    R, A = sim.small_graphs(w.K, s.oracle_nodes)
    fixed = {name: sim.fixed_topology(w, name, np.random.default_rng([p.test_seed, 9])) for name in sim.FIXED}
    oracle, fixed_acc = {}, {name: {} for name in fixed}
    with ctx.progress(len(common.cells(p)), "validation cells", unit="cell") as bar:
        for f, h in common.cells(p):
            e = sim.expected(w, R, A, f, h, s.oracle_samples, vrng)
            best = int(np.argmax(e["accuracy"]))
            oracle[(f, h)] = (R[best], A[best], float(e["accuracy"][best]))
            for name, (r, a) in fixed.items():
                fixed_acc[name][(f, h)] = float(sim.expected(w, r[None], a[None], f, h, s.oracle_samples, vrng)["accuracy"][0])
            bar.update(1)
    mean_fixed = {n: float(np.mean(list(v.values()))) for n, v in fixed_acc.items()}
    best_fixed = max(mean_fixed, key=mean_fixed.get)
    per_family = {}
    for f, fam in enumerate(sim.FAMILIES):
        scores = {n: float(np.mean([v[(f, h)] for h in range(1, p.difficulties + 1)])) for n, v in fixed_acc.items()}
        per_family[fam] = max(scores, key=scores.get)
    ctx.log(f"validation: fixed {', '.join(f'{k} {v:.3f}' for k, v in mean_fixed.items())}; oracle "
            f"{np.mean([o[2] for o in oracle.values()]):.3f}; best fixed {best_fixed}; per family {per_family}")

    fam, hh, queries = common.test_queries(p)
    rep = np.repeat(np.arange(len(fam)), s.eval_repeats)
    F, H = fam[rep], hh[rep]
    rows = []
    N = max(s.oracle_nodes, max(len(r) for r, _ in fixed.values()))

    def pad(r, a):
        rr = np.full(N, -1)
        rr[: len(r)] = r
        aa = np.zeros((N, N), dtype=bool)
        aa[: a.shape[0], : a.shape[1]] = a
        return rr, aa

    for seed in p.seeds:
        rng = np.random.default_rng([seed, common.SALT["eval"]])
        for name, (r, a) in fixed.items():
            rr, aa = pad(r, a)
            out = sim.execute(w, np.repeat(rr[None], len(F), 0), np.repeat(aa[None], len(F), 0), F, H, rng)
            rows += common.eval_rows(out, F, H, name, seed)
        og = [pad(*oracle[(int(f), int(h))][:2]) for f, h in zip(F, H)]
        out = sim.execute(w, np.stack([o[0] for o in og]), np.stack([o[1] for o in og]), F, H, rng)
        rows += common.eval_rows(out, F, H, "oracle", seed)
    out_dir = ctx.out(common.BASE_DIR)
    out_dir.mkdir(parents=True)
    pl.DataFrame(rows).write_parquet(out_dir / "eval.parquet")
    pl.DataFrame({"family": [sim.FAMILIES[f] for f in fam], "difficulty": hh, "text": [q.text for q in queries],
                  "answer": [q.answer for q in queries]}).write_parquet(out_dir / "queries.parquet")
    (out_dir / "choice.json").write_text(json.dumps({
        "best_fixed": best_fixed, "best_fixed_per_family": per_family, "validation_fixed": mean_fixed,
        "validation_oracle": float(np.mean([o[2] for o in oracle.values()])),
        "oracle_graphs": {f"{sim.FAMILIES[f]}-{h}": {"roles": [w.roles[int(x)] for x in o[0] if x >= 0],
                                                    "edges": np.argwhere(o[1]).tolist(), "accuracy": o[2]}
                          for (f, h), o in oracle.items()}}, indent=1, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    return run_stage("mashost_baselines", "mashost", MasHostParams, body, argv,
                     outputs=lambda a, p: [str(common.BASE_DIR)])


if __name__ == "__main__":
    sys.exit(main())
