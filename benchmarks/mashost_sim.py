"""Episodes per second of MasHost's simulator (stages/mashost/sim.py), in one run:

    python benchmarks/mashost_sim.py [--graphs 20000]

1. execution: random graphs of 5 agents over the role pool (random forward edges) run by our
   vectorised `execute` (numpy over the batch), beside the same semantics run one graph at a
   time in topological order by networkx (`nx.topological_sort` over a `DiGraph`), the nearest
   packaged way to run a DAG of agents; the ratio says what the batching buys.
2. construction episodes: the untrained policy builds graphs for random queries with
   `hrpo.rollout` (policy forward + simulator, up to 6 steps), G x queries episodes per call.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def networkx_execute(w, roles, adj, family, h, rng) -> np.ndarray:
    """The simulator's rules, one graph at a time, nodes in networkx's topological order."""
    import networkx as nx

    from stages.mashost import sim

    correct = np.zeros(len(roles), dtype=bool)
    for b in range(len(roles)):
        g = nx.DiGraph()
        n = int((roles[b] >= 0).sum())
        g.add_nodes_from(range(n))
        g.add_edges_from((i, j) for i in range(n) for j in range(n) if adj[b, i, j])
        ans = np.full((1, roles.shape[1]), sim.NO_ANSWER)
        for j in nx.topological_sort(g):  # insertion order is a topological order; networkx finds one
            ans[0, j] = sim.node_answer(w, roles[b:b + 1], adj[b:b + 1], ans, j, family[b:b + 1], h[b:b + 1], rng)[0]
        correct[b] = sim.system_answer(ans)[1][0] == 0
    return correct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=20000)
    ap.add_argument("--nx-graphs", type=int, default=1000)
    a = ap.parse_args()

    import torch

    from hrlzoo.pipeline.params import load_params
    from stages.mashost import hrpo, sim
    from stages.mashost.params import MasHostParams, world

    torch.set_num_threads(1)
    p = load_params("mashost", MasHostParams)
    w = world(p)
    rng = np.random.default_rng(0)
    B, N = a.graphs, 5
    roles = rng.integers(w.K, size=(B, N))
    adj = np.triu(rng.random((B, N, N)) < 0.5, 1)
    fam = rng.integers(len(sim.FAMILIES), size=B)
    h = rng.integers(1, 6, size=B)
    t0 = time.perf_counter()
    sim.execute(w, roles, adj, fam, h, rng)
    ours = B / (time.perf_counter() - t0)
    n = a.nx_graphs
    t0 = time.perf_counter()
    networkx_execute(w, roles[:n], adj[:n], fam[:n], h[:n], rng)
    nxr = n / (time.perf_counter() - t0)

    policy = hrpo.Policy(w.K, len(sim.FAMILIES), p.difficulties, p.policy.max_nodes, p.policy.hidden,
                         p.policy.role_dim, separate=False)
    gen = torch.Generator().manual_seed(0)
    E = 128
    t0 = time.perf_counter()
    reps = 20
    for _ in range(reps):
        hrpo.rollout(policy, w, rng.integers(6, size=E), rng.integers(1, 6, size=E), p.difficulties,
                     p.policy.max_nodes, rng, gen, 0.2, 0.1, 500.0)
    eps = reps * E / (time.perf_counter() - t0)
    print(f"{'what':<62} {'per second':>12} {'x networkx':>11}")
    print(f"{'executions of 5-agent graphs, ours (batch of %d)' % B:<62} {ours:12.0f} {ours / nxr:11.1f}")
    print(f"{'executions of 5-agent graphs, networkx topological order':<62} {nxr:12.0f} {1.0:11.1f}")
    print(f"{'construction episodes (policy + simulator, batch of %d)' % E:<62} {eps:12.0f} {'':>11}")


if __name__ == "__main__":
    main()
