"""MasHost's graph-construction MDP, its joint role-and-edge policy and HRPO (OUR READING: the
paper's code is not public; spec B §3.2-3.3 from the abstract and the public ICLR reviews).

MDP (reviews): state s_t = (query, the multi-agent system built so far, the messages its agents
have produced); each step one atomic action a_t = (a_n, a_e): a node action a_n in the role pool
R (add an agent with that role) + {DELETE, EXIT}, and, for an added role, an edge action a_e: for
every existing agent, whether the new agent reads it. The new agent runs at once (its message is
part of the next state). DELETE removes the most recently added agent (our choice); EXIT ends
(forced after `max_nodes` steps). The query enters as its family and difficulty (the paper's
query encoder reads text; ours reads these features).

Joint Probabilistic Space Sampling (reviews): pi(a_t | s_t) = pi_theta(a_n | s_t) pi_phi(a_e | s_t,
a_n), the edge head scoring every existing node against the chosen role's embedding
(Bernoulli per node). Ablation `separate`: edges do not see the chosen role, and the two
heads are updated with separate clipped ratios (two independent updates).

Rewards (our reading of the tri-criteria objective): outcome R = 1[correct] - lambda_c
tokens / cost_ref - lambda_r irrational; action-wise r_t for an ADD: the change of the system's
correctness - lambda_c tokens(new agent) / cost_ref - lambda_r 1[the new agent duplicates an
earlier one's role and inputs]; for DELETE: the change of correctness + lambda_r 1[the removed
agent was a duplicate]; EXIT: 0. Exemption: during the first `exemption_iters` of training the
cost and rationality terms are 0 (solve first, then prune).

HRPO advantage of step t of graph g among the G graphs of one query:
A_{g,t} = (R_g - mean_G R) / (std_G R + eps) + beta norm_G(sum_{t' >= t} r_{g,t'}), the second
term normalised over every step of the group. Loss: PPO clip (eps 0.2) on the joint log-ratio
of node and edge actions, `epochs` passes, an entropy bonus on the node head.
Ablations: grpo_only (beta = 0), reinforce (A = R_g, one plain policy-gradient step, no clip),
no_exemption (exemption 0), separate (see above).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from stages.mashost import sim

@dataclass
class Variant:
    """What distinguishes HRPO from its ablations."""

    step_coef: float            # beta (0: GRPO-only)
    exemption: float            # share of iterations exempt from cost and rationality
    reinforce: bool = False     # plain REINFORCE on R_g (no group baseline, no clip, one pass)
    separate: bool = False      # role and edges sampled and updated separately


def variant(method: str, p) -> Variant:
    r = p.reward
    return {"mashost": Variant(r.step_coef, r.exemption_iters),
            "grpo_only": Variant(0.0, r.exemption_iters),
            "reinforce": Variant(0.0, r.exemption_iters, reinforce=True),
            "no_exemption": Variant(r.step_coef, 0.0),
            "separate": Variant(r.step_coef, r.exemption_iters, separate=True)}[method]


class Policy(nn.Module):
    """Node head (K roles + DELETE + EXIT) on a state MLP; edge head scoring each existing node."""

    def __init__(self, K: int, F: int, D: int, max_nodes: int, hidden: int, role_dim: int, separate: bool):
        super().__init__()
        self.K, self.F, self.D, self.N, self.separate = K, F, D, max_nodes, separate
        self.d_state = F + D + K + 1 + 3
        self.d_node = K + 3
        self.trunk = nn.Sequential(nn.Linear(self.d_state, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.node_head = nn.Linear(hidden, K + 2)
        self.role_emb = nn.Embedding(K, role_dim)
        self.edge = nn.Sequential(nn.Linear(hidden + role_dim + self.d_node, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def node_logits(self, state: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.trunk(state)
        return self.node_head(h).masked_fill(~mask, -1e9), h

    def edge_logits(self, h: torch.Tensor, role: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """h [B, H], role [B], nodes [B, N, d_node] -> logits [B, N]."""
        e = self.role_emb(role.clamp(0, self.K - 1))  # DELETE / EXIT add no edges (masked)
        if self.separate:
            e = torch.zeros_like(e)
        x = torch.cat([h[:, None].expand(-1, nodes.shape[1], -1), e[:, None].expand(-1, nodes.shape[1], -1), nodes], -1)
        return self.edge(x).squeeze(-1)


class Builder:
    """B graph constructions in parallel (numpy state, torch policy)."""

    def __init__(self, w: sim.World, family: np.ndarray, h: np.ndarray, D: int, max_nodes: int, rng):
        B = len(family)
        self.w, self.family, self.h, self.D, self.N, self.rng = w, family, h, D, max_nodes, rng
        self.roles = np.full((B, max_nodes), -1)
        self.adj = np.zeros((B, max_nodes, max_nodes), dtype=bool)
        self.ans = np.full((B, max_nodes), sim.NO_ANSWER)
        self.n = np.zeros(B, dtype=int)
        self.done = np.zeros(B, dtype=bool)
        self.t = 0

    def correct(self) -> np.ndarray:
        return sim.system_answer(self.ans)[1] == 0

    def features(self):
        """State [B, d_state], node features [B, N, K + 3], node-action mask [B, K + 2]."""
        w, B, N = self.w, len(self.family), self.N
        K = w.K
        F = len(sim.FAMILIES)
        present = self.roles >= 0
        last, system = sim.system_answer(self.ans)
        has = self.ans >= 0
        agree = (self.ans == system[:, None]) & has
        n_has = has.sum(1)
        counts = np.zeros((B, K))
        for j in range(N):
            rows = np.flatnonzero(present[:, j])
            counts[rows, self.roles[rows, j]] += 1
        distinct = np.array([len(set(a[a >= 0].tolist())) for a in self.ans])
        state = np.concatenate([np.eye(F)[self.family], np.eye(self.D)[self.h - 1], counts / N,
                                np.full((B, 1), self.t / N),
                                np.stack([system >= 0, agree.sum(1) / np.maximum(n_has, 1),
                                          distinct / np.maximum(n_has, 1)], 1)], 1)
        node = np.zeros((B, N, K + 3))
        rr = np.where(present, self.roles, 0)
        node[..., :K] = np.eye(K)[rr] * present[..., None]
        node[..., K] = has
        node[..., K + 1] = agree
        node[..., K + 2] = np.arange(N)[None] / N * present
        mask = np.ones((B, K + 2), dtype=bool)
        full = self.n >= N
        mask[:, :K] = ~full[:, None]
        mask[:, K] = self.n > 0                     # DELETE needs a node
        mask[:, K + 1] = self.n > 0                 # EXIT needs a node
        if self.t >= N - 1 + N:                     # safety: end the loop
            mask[:, :K + 1] = False
            mask[:, K + 1] = True
        return (torch.as_tensor(state, dtype=torch.float32), torch.as_tensor(node, dtype=torch.float32),
                torch.as_tensor(mask))

    def apply(self, a_n: np.ndarray, edges: np.ndarray, live: np.ndarray, lam_c: float, lam_r: float,
              cost_ref: float) -> np.ndarray:
        """Apply node actions [B] and edges [B, N] on live rows; returns the step rewards [B]."""
        w, K = self.w, self.w.K
        before = self.correct()
        r = np.zeros(len(a_n))
        add = live & (a_n < K)
        dele = live & (a_n == K)
        ex = live & (a_n == K + 1)
        rows = np.flatnonzero(add)
        j = self.n[rows]
        self.roles[rows, j] = a_n[rows]
        for b, jj in zip(rows, j):
            self.adj[b, :jj, jj] = edges[b, :jj]
            self.adj[b, jj:, jj] = False
        if rows.size:
            for jj in np.unique(j):
                sel = rows[j == jj]
                fam, hh = self.family[sel], self.h[sel]
                self.ans[sel, jj] = sim.node_answer(w, self.roles[sel], self.adj[sel], self.ans[sel], int(jj), fam, hh,
                                                    self.rng)
            dup = self._duplicate(rows, j)
            tok = w.base_tokens[a_n[rows]] * (1 + w.token_per_input * self.adj[rows, :, j].sum(1))
            r[rows] = -lam_c * tok / cost_ref - lam_r * dup
            self.n[rows] += 1
        drows = np.flatnonzero(dele)
        if drows.size:
            j = self.n[drows] - 1
            dup = self._duplicate(drows, j)
            self.roles[drows, j] = -1
            self.adj[drows, :, j] = False
            self.adj[drows, j, :] = False
            self.ans[drows, j] = sim.NO_ANSWER
            self.n[drows] -= 1
            r[drows] += lam_r * dup
        self.done |= ex
        r += np.where(live, self.correct().astype(float) - before, 0.0)
        self.t += 1
        return r

    def _duplicate(self, rows: np.ndarray, j: np.ndarray) -> np.ndarray:
        out = np.zeros(len(rows))
        for k, (b, jj) in enumerate(zip(rows, j)):
            for i in range(jj):
                if self.roles[b, i] == self.roles[b, jj] and (self.adj[b, :, i] == self.adj[b, :, jj]).all():
                    out[k] = 1.0
                    break
        return out


def rollout(policy: Policy, w, family, h, D, max_nodes, rng, gen, lam_c, lam_r, cost_ref, greedy=False):
    """Build B graphs. Returns the builder and per-step records (features, actions, log-probs,
    rewards, live masks), each a list over steps."""
    b = Builder(w, family, h, D, max_nodes, rng)
    steps = []
    K = w.K
    for _ in range(2 * max_nodes):
        live = ~b.done
        if not live.any():
            break
        state, nodes, mask = b.features()
        if b.t >= 2 * max_nodes - 1:
            mask = torch.zeros_like(mask)
            mask[:, K + 1] = True
        with torch.no_grad():
            logits, hid = policy.node_logits(state, mask)
            dist = torch.distributions.Categorical(logits=logits)
            a = logits.argmax(-1) if greedy else _sample(dist, gen)
            el = policy.edge_logits(hid, a, nodes)
            exist = torch.as_tensor(b.roles >= 0)
            pe = torch.sigmoid(el)
            e = (pe > 0.5) if greedy else (torch.rand(pe.shape, generator=gen) < pe)
            e = e & exist & (a < K)[:, None]
            lp_n = dist.log_prob(a)
            lp_e = (torch.distributions.Bernoulli(logits=el).log_prob(e.float()) * (exist & (a < K)[:, None])).sum(1)
        a_np = a.numpy()
        r = b.apply(a_np, e.numpy(), live, lam_c, lam_r, cost_ref)
        steps.append({"state": state, "nodes": nodes, "mask": mask, "a": a, "e": e, "exist": exist,
                      "lp_n": lp_n, "lp_e": lp_e, "r": torch.as_tensor(r, dtype=torch.float32),
                      "live": torch.as_tensor(live)})
    return b, steps


def _sample(dist, gen):
    probs = dist.probs
    return torch.multinomial(probs, 1, generator=gen).squeeze(1)


def advantages(R: torch.Tensor, steps, G: int, v: Variant, eps: float = 1e-6) -> torch.Tensor:
    """A [T, B] (see the module docstring); rows are query-major (row q * G + g)."""
    T, B = len(steps), R.shape[0]
    live = torch.stack([s["live"] for s in steps]).float()
    r = torch.stack([s["r"] for s in steps]) * live
    if v.reinforce:
        return R[None].expand(T, B) * live
    Rq = R.view(-1, G)
    outcome = ((Rq - Rq.mean(1, keepdim=True)) / (Rq.std(1, keepdim=True) + eps)).view(-1)
    A = outcome[None].expand(T, B).clone()
    if v.step_coef > 0:
        togo = torch.flip(torch.cumsum(torch.flip(r, [0]), 0), [0])         # [T, B]
        tg = togo.T.reshape(-1, G, T)                                         # [Q, G, T]
        lv = live.T.reshape(-1, G, T)
        n = lv.sum((1, 2), keepdim=True).clamp(min=1)
        mean = (tg * lv).sum((1, 2), keepdim=True) / n
        std = (((tg - mean) ** 2 * lv).sum((1, 2), keepdim=True) / (n - 1).clamp(min=1)).sqrt()
        A = A + v.step_coef * ((tg - mean) / (std + eps) * lv).reshape(B, T).T
    return A * live


def update(policy: Policy, opt, steps, A: torch.Tensor, v: Variant, clip: float, epochs: int, entropy: float) -> dict:
    """PPO clip on the joint (or, `separate`, on each head's own) log-ratio; REINFORCE: one plain pass."""
    K = policy.K
    state = torch.cat([s["state"] for s in steps])
    nodes = torch.cat([s["nodes"] for s in steps])
    mask = torch.cat([s["mask"] for s in steps])
    a = torch.cat([s["a"] for s in steps])
    e = torch.cat([s["e"] for s in steps]).float()
    exist = torch.cat([s["exist"] for s in steps])
    old_n = torch.cat([s["lp_n"] for s in steps])
    old_e = torch.cat([s["lp_e"] for s in steps])
    live = torch.cat([s["live"] for s in steps]).float()
    adv = A.reshape(-1)
    n_live = live.sum().clamp(min=1)
    stats = {}
    for _ in range(1 if v.reinforce else epochs):
        logits, hid = policy.node_logits(state, mask)
        dist = torch.distributions.Categorical(logits=logits)
        lp_n = dist.log_prob(a)
        el = policy.edge_logits(hid, a, nodes)
        em = (exist & (a < K)[:, None]).float()
        lp_e = (torch.distributions.Bernoulli(logits=el).log_prob(e) * em).sum(1)
        if v.reinforce:
            pg = -(adv * (lp_n + lp_e))
        elif v.separate:
            pg = sum(_clipped(lp, old, adv, clip) for lp, old in ((lp_n, old_n), (lp_e, old_e)))
        else:
            pg = _clipped(lp_n + lp_e, old_n + old_e, adv, clip)
        loss = ((pg - entropy * dist.entropy()) * live).sum() / n_live
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        stats = {"loss": loss.item(), "entropy": ((dist.entropy() * live).sum() / n_live).item()}
    return stats


def _clipped(lp, old, adv, clip):
    ratio = torch.exp(lp - old)
    return -torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
