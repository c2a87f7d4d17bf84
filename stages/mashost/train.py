"""Stage mashost_train: train one construction method (HRPO or an ablation) for every seed,
then build and run a graph for every test query (OUR READING of MasHost, see hrpo.py).

    python -m stages.mashost.train <method>     # mashost | grpo_only | reinforce | no_exemption | separate

Each iteration: `queries` training queries (family and difficulty uniform), G = `group` graphs
each, built by the policy (sampling), run by the simulator, scored, one update. Test: the policy's
greedy graph (argmax role, edges with probability > 0.5) for every test query, `eval_repeats`
executions. Writes data/mashost/runs/<method>/: curve.parquet (seed, iteration, episodes,
accuracy, reward, tokens, agents of the sampled graphs), eval.parquet (one row per execution).
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.mashost import common, hrpo, sim
from stages.mashost.params import METHODS, MasHostParams, sizes, world


def run_seed(ctx: Stage, method: str, seed: int):
    import torch

    p: MasHostParams = ctx.params
    s, pp, rw = sizes(p), p.policy, p.reward
    w = world(p)
    v = hrpo.variant(method, p)
    torch.manual_seed(int(np.random.default_rng([seed, common.SALT["torch"]]).integers(2**31)))
    policy = hrpo.Policy(w.K, len(sim.FAMILIES), p.difficulties, pp.max_nodes, pp.hidden, pp.role_dim, v.separate)
    opt = torch.optim.Adam(policy.parameters(), lr=pp.lr)
    rng = np.random.default_rng([seed, common.SALT["train"]])
    gen = torch.Generator().manual_seed(seed)
    rows = []
    with ctx.progress(s.iterations, f"{method} seed {seed}", unit="iter") as bar:
        for it in range(1, s.iterations + 1):
            exempt = it <= v.exemption * s.iterations
            lam_c, lam_r = (0.0, 0.0) if exempt else (rw.cost_coef, rw.rationality_coef)
            qf = rng.integers(len(sim.FAMILIES), size=s.queries)
            qh = rng.integers(1, p.difficulties + 1, size=s.queries)
            fam, hh = np.repeat(qf, s.group), np.repeat(qh, s.group)
            b, steps = hrpo.rollout(policy, w, fam, hh, p.difficulties, pp.max_nodes, rng, gen, lam_c, lam_r, rw.cost_ref)
            correct = b.correct()
            tokens = sim.tokens_of(w, b.roles, b.adj)
            last, _ = sim.system_answer(b.ans)
            irr = sim.irrationality(b.roles, b.adj, last)
            R = torch.as_tensor(correct - lam_c * tokens / rw.cost_ref - lam_r * irr, dtype=torch.float32)
            A = hrpo.advantages(R, steps, s.group, v)
            st = hrpo.update(policy, opt, steps, A, v, pp.clip, pp.epochs, pp.entropy)
            ctx.guard(f"{method} loss", st["loss"], it)
            rows.append({"seed": seed, "iteration": it, "episodes": it * s.queries * s.group,
                         "accuracy": float(correct.mean()), "reward": float(R.mean()), "tokens": float(tokens.mean()),
                         "agents": float((b.roles >= 0).sum(1).mean()), "entropy": st["entropy"]})
            bar.update(1)
    fam, hh, _ = common.test_queries(p)
    rep = np.repeat(np.arange(len(fam)), s.eval_repeats)
    erng = np.random.default_rng([seed, common.SALT["eval"]])
    b, _ = hrpo.rollout(policy, w, fam[rep], hh[rep], p.difficulties, pp.max_nodes, erng, gen, 0.0, 0.0, rw.cost_ref,
                        greedy=True)
    last, system = sim.system_answer(b.ans)
    out = {"correct": system == 0, "tokens": sim.tokens_of(w, b.roles, b.adj), "nodes": (b.roles >= 0).sum(1),
           "edges": (b.adj & (b.roles >= 0)[:, :, None] & (b.roles >= 0)[:, None, :]).sum((1, 2)),
           "irrational": sim.irrationality(b.roles, b.adj, last)}
    evals = common.eval_rows(out, fam[rep], hh[rep], method, seed)
    ctx.log(f"{method} seed {seed}: test accuracy {np.mean(out['correct']):.3f}, tokens {np.mean(out['tokens']):.0f}, "
            f"agents {np.mean(out['nodes']):.2f}; last train accuracy {rows[-1]['accuracy']:.3f}")
    return rows, evals


def body(ctx: Stage) -> None:
    """Train one method for every seed; evaluate each on the test queries."""
    import polars as pl

    p: MasHostParams = ctx.params
    method = ctx.args.method
    out = ctx.out(common.RUN_ROOT / method)
    out.mkdir(parents=True)
    curves, evals = [], []
    for seed in p.seeds:
        r, e = run_seed(ctx, method, seed)
        curves += r
        evals += e
    pl.DataFrame(curves).with_columns(method=pl.lit(method)).write_parquet(out / "curve.parquet")
    pl.DataFrame(evals).write_parquet(out / "eval.parquet")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("method", choices=METHODS)

    def validate_args(a, p):
        return None if a.method in p.methods else f"method '{a.method}': not in params methods"

    return run_stage("mashost_train", "mashost", MasHostParams, body, argv, add_args=add_args,
                     validate_args=validate_args, outputs=lambda a, p: [str(common.RUN_ROOT / a.method)])


if __name__ == "__main__":
    sys.exit(main())
