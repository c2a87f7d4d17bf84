"""MasHost's simulated world (OUR READING, spec B §3.3 / §3.5: the paper's code is not public):
six task families with exact answers, simulated role agents with pre-registered skills, the
execution of a multi-agent graph, its token cost and its rationality, the fixed topologies and
the brute-force oracle.

Queries. Six families mirroring the paper's benchmarks, each instance generated with its exact
answer (`make_query`): arith (GSM8K: a chain of h+1 integer operations), equation (MATH: a
linear equation a x + b = c with an integer root, coefficients growing with h), kb_lookup
(MMLU: an attribute of an entity of a generated knowledge base, 4 options), kb_multihop (GPQA:
h hops through the base's `friend` relation, then an attribute, 4 options), program_output
(MBPP: the output of h+1 generated statements on an integer), code_fix (HumanEval: which of h+2
lines breaks the stated property). Difficulty h in 1..5.

Agents. A role agent does not read text: it is right with a probability from the skill table
(params `roles`, pre-registered), else it says one of the family's `distractors` wrong answers
(so wrong agents can agree, and votes can fail). Answers are codes: 0 the right answer, 1..D
the distractors. Roles (kind in params):
- expert (solver, math, programmer, retriever): answers with p = clip(skill[f] - slope[f] (h_eff
  - 1)), h_eff = h - `decompose_gain` if any predecessor is a decomposer (not below 1);
- decomposer: no answer; lowers h_eff of its successors;
- verifier / critic: takes the majority answer of its predecessors (ties: the latest); a wrong one
  is caught with probability detect[f], a right one wrongly flagged with `false_alarm`; a flagged
  (or missing) candidate is re-solved as an expert of its own skill;
- aggregator: the majority of its predecessors' answers (no predecessor: no answer).
Nodes run in the order they were added (edges go from earlier to later nodes: a DAG); the
system's answer is that of the last node with an answer. Tokens: base_tokens[role] x (1 +
`token_per_input` x in-degree). Irrationality: nodes with no path to the output node plus nodes
whose role and input set duplicate an earlier node's.

Everything is vectorised over a batch of executions (numpy): `execute(roles, adj, family, h,
rng)` takes roles [B, N] (-1 = no node), adjacency [B, N, N] (adj[b, i, j]: edge i -> j, i < j).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

FAMILIES = ("arith", "equation", "kb_lookup", "kb_multihop", "program_output", "code_fix")
KINDS = ("expert", "decomposer", "verifier", "aggregator")
NO_ANSWER = -1


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    family: int
    difficulty: int
    text: str
    answer: str


def _kb(rng):
    ents = [f"e{i}" for i in range(12)]
    colors = ["red", "blue", "green", "gold"]
    color = {e: colors[int(rng.integers(4))] for e in ents}
    friend = {e: ents[int(rng.integers(12))] for e in ents}
    return ents, colors, color, friend


def make_query(family: int, h: int, rng: np.random.Generator) -> Query:
    """One instance of `family` at difficulty `h`, with its exact answer (see the module docstring)."""
    name = FAMILIES[family]
    if name == "arith":
        x = int(rng.integers(1, 20))
        text = str(x)
        for _ in range(h + 1):
            op, v = "+-*"[int(rng.integers(3))], int(rng.integers(1, 10))
            x = x + v if op == "+" else x - v if op == "-" else x * v
            text = f"({text} {op} {v})"
        return Query(family, h, text, str(x))
    if name == "equation":
        a, root = int(rng.integers(1, 3 * h + 2)), int(rng.integers(-10 * h, 10 * h + 1))
        b = int(rng.integers(-10 * h, 10 * h + 1))
        return Query(family, h, f"{a} x + {b} = {a * root + b}", str(root))
    if name in ("kb_lookup", "kb_multihop"):
        ents, colors, color, friend = _kb(rng)
        e = ents[int(rng.integers(12))]
        hops = 0 if name == "kb_lookup" else h
        facts = "; ".join(f"{k} {color[k]} friend {friend[k]}" for k in ents)
        target = e
        for _ in range(hops):
            target = friend[target]
        q = f"color of {'friend of ' * hops}{e} in [{facts}] options {' '.join(colors)}"
        return Query(family, h, q, color[target])
    if name == "program_output":
        x0 = int(rng.integers(0, 10))
        x, lines = x0, []
        for _ in range(h + 1):
            op, v = "+-*"[int(rng.integers(3))], int(rng.integers(1, 5))
            x = x + v if op == "+" else x - v if op == "-" else x * v
            lines.append(f"x = x {op} {v}")
        return Query(family, h, f"x = {x0}; " + "; ".join(lines) + "; print(x)", str(x))
    # code_fix: h + 2 lines meant to compute 2 * x step by step; one line is broken
    n = h + 2
    bad = int(rng.integers(n))
    lines = [f"y{i} = y{i - 1} + 0" if i else "y0 = 2 * x" for i in range(n)]
    lines[bad] = lines[bad].replace("+ 0", "+ 1") if bad else "y0 = 3 * x"
    return Query(family, h, "should return 2 * x: " + "; ".join(lines), str(bad))


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    """The role pool and the simulator's constants (from params)."""

    roles: list[str]
    kind: np.ndarray            # [K] index into KINDS
    skill: np.ndarray           # [K, F] accuracy at h = 1 (experts; verifiers' own re-solve)
    slope: np.ndarray           # [K, F] accuracy lost per difficulty level
    detect: np.ndarray          # [K, F] verifier / critic: chance to catch a wrong candidate
    base_tokens: np.ndarray     # [K]
    distractors: np.ndarray     # [F] wrong answers per family
    decompose_gain: int = 2
    false_alarm: float = 0.05
    token_per_input: float = 0.3

    @property
    def K(self) -> int:
        return len(self.roles)

    def role(self, name: str) -> int:
        return self.roles.index(name)


def _majority(ans: np.ndarray, mask: np.ndarray, n_codes: int) -> np.ndarray:
    """Per row, the most frequent answer among ans[mask] (ties: the latest node's), NO_ANSWER
    when the mask selects nothing. ans, mask: [B, N]."""
    B, N = ans.shape
    valid = mask & (ans >= 0)
    counts = np.zeros((B, n_codes))
    latest = np.full((B, n_codes), -1)
    for j in range(N):
        rows = np.flatnonzero(valid[:, j])
        counts[rows, ans[rows, j]] += 1
        latest[rows, ans[rows, j]] = j
    score = counts * (N + 1) + latest  # count first, then recency
    out = score.argmax(1)
    out[~valid.any(1)] = NO_ANSWER
    return out


def node_answer(w: World, roles: np.ndarray, adj: np.ndarray, ans: np.ndarray, j: int, family: np.ndarray,
                h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The answer [B] of node j given the answers `ans` [B, N] of the nodes before it (rows where
    node j is absent get NO_ANSWER)."""
    B, N = roles.shape
    n_codes = int(w.distractors.max()) + 1
    present = roles >= 0
    r = np.where(present, roles, 0)
    kind = np.where(present, w.kind[r], -1)
    pred = adj[:, :, j] & present & present[:, j:j + 1]
    pred[:, j:] = False
    dec = (pred & (kind == KINDS.index("decomposer"))).any(1)
    h_eff = np.maximum(1, h - np.where(dec, w.decompose_gain, 0))
    p = np.clip(w.skill[r[:, j], family] - w.slope[r[:, j], family] * (h_eff - 1), 0.02, 0.98)
    wrong = 1 + (rng.random(B) * w.distractors[family]).astype(int)
    solve = np.where(rng.random(B) < p, 0, wrong)
    caught = rng.random(B) < w.detect[r[:, j], family]
    alarm = rng.random(B) < w.false_alarm
    kj = kind[:, j]
    out = np.full(B, NO_ANSWER)
    ex = kj == KINDS.index("expert")
    out[ex] = solve[ex]
    ver = kj == KINDS.index("verifier")
    if ver.any():
        cand = _majority(ans, pred, n_codes)
        resolve = (cand == NO_ANSWER) | ((cand > 0) & caught) | ((cand == 0) & alarm)
        out[ver] = np.where(resolve, solve, cand)[ver]
    agg = kj == KINDS.index("aggregator")
    if agg.any():
        out[agg] = _majority(ans, pred, n_codes)[agg]
    return np.where(present[:, j], out, NO_ANSWER)


def system_answer(ans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the last answering node [B] or -1, its answer [B] or NO_ANSWER)."""
    B, N = ans.shape
    has = ans >= 0
    last = np.where(has.any(1), N - 1 - np.argmax(has[:, ::-1], 1), -1)
    return last, np.where(last >= 0, ans[np.arange(B), np.maximum(last, 0)], NO_ANSWER)


def tokens_of(w: World, roles: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Token cost [B] of each graph."""
    present = roles >= 0
    r = np.where(present, roles, 0)
    indeg = (adj & present[:, :, None] & present[:, None, :]).sum(1)
    return (np.where(present, w.base_tokens[r], 0) * (1 + w.token_per_input * indeg)).sum(1)


def execute(w: World, roles: np.ndarray, adj: np.ndarray, family: np.ndarray, h: np.ndarray,
            rng: np.random.Generator) -> dict:
    """Run B graphs (see the module docstring). Returns answers [B, N], the system answer [B],
    correct [B], tokens [B], nodes [B], edges [B], irrational [B]."""
    B, N = roles.shape
    ans = np.full((B, N), NO_ANSWER)
    for j in range(N):
        ans[:, j] = node_answer(w, roles, adj, ans, j, family, h, rng)
    last, system = system_answer(ans)
    present = roles >= 0
    return {"answers": ans, "system": system, "correct": system == 0, "tokens": tokens_of(w, roles, adj),
            "nodes": present.sum(1), "edges": (adj & present[:, :, None] & present[:, None, :]).sum((1, 2)),
            "irrational": irrationality(roles, adj, last)}


def irrationality(roles: np.ndarray, adj: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Nodes with no path to the output node + nodes duplicating an earlier node's role and
    input set. output: [B] index of the output node (-1: none, every node counts)."""
    B, N = roles.shape
    present = roles >= 0
    a = adj & present[:, :, None] & present[:, None, :]
    reach = np.zeros((B, N), dtype=bool)
    reach[np.arange(B), np.maximum(output, 0)] = output >= 0
    for j in range(N - 1, -1, -1):  # reverse topological order: i reaches out if an edge i -> j reaches
        reach |= a[:, :, j] & reach[:, j:j + 1]
    dead = (present & ~reach).sum(1)
    dup = np.zeros(B, dtype=int)
    for j in range(N):
        twin = np.zeros(B, dtype=bool)
        for i in range(j):
            twin |= present[:, i] & present[:, j] & (roles[:, i] == roles[:, j]) & (a[:, :, i] == a[:, :, j]).all(1)
        dup += twin
    return dead + dup


# --------------------------------------------------------------------------- graphs


def fixed_topology(w: World, name: str, rng: np.random.Generator | None = None, size: int = 5):
    """(roles [N], adj [N, N]) of a fixed topology over the team solver, math, programmer,
    retriever + a verifier (chain / star / complete) or of the single / self-consistency baselines."""
    team = [w.role(x) for x in ("solver", "math", "programmer", "retriever", "verifier")]
    if name == "single":
        return np.array([w.role("solver")]), np.zeros((1, 1), dtype=bool)
    if name == "self_consistency":  # 5 solver samples, majority vote
        roles = np.array([w.role("solver")] * size + [w.role("aggregator")])
        adj = np.zeros((size + 1, size + 1), dtype=bool)
        adj[:size, size] = True
        return roles, adj
    n = len(team)
    adj = np.zeros((n, n), dtype=bool)
    if name == "chain":
        for i in range(n - 1):
            adj[i, i + 1] = True
        return np.array(team), adj
    if name == "star":  # the four experts -> the verifier
        adj[: n - 1, n - 1] = True
        return np.array(team), adj
    if name == "complete":
        return np.array(team), np.triu(np.ones((n, n), dtype=bool), 1)
    if name == "random":
        rng = rng or np.random.default_rng(0)
        roles = rng.integers(w.K, size=n)
        return roles, np.triu(rng.random((n, n)) < 0.5, 1)
    raise ValueError(f"unknown topology {name!r}")


FIXED = ("single", "self_consistency", "chain", "star", "complete", "random")


def small_graphs(K: int, max_nodes: int):
    """Every graph of 1..max_nodes nodes (roles in 0..K-1, any DAG over the insertion order) as
    padded arrays roles [G, max_nodes], adj [G, max_nodes, max_nodes]."""
    roles_out, adj_out = [], []
    for n in range(1, max_nodes + 1):
        pairs = [(i, j) for j in range(n) for i in range(j)]
        for rs in itertools.product(range(K), repeat=n):
            for bits in itertools.product((False, True), repeat=len(pairs)):
                r = np.full(max_nodes, -1)
                r[:n] = rs
                a = np.zeros((max_nodes, max_nodes), dtype=bool)
                for (i, j), b in zip(pairs, bits):
                    a[i, j] = b
                roles_out.append(r)
                adj_out.append(a)
    return np.array(roles_out), np.array(adj_out)


def expected(w: World, roles: np.ndarray, adj: np.ndarray, family: int, h: int, samples: int,
             rng: np.random.Generator) -> dict:
    """Monte-Carlo accuracy and mean tokens of each of G graphs on (family, h), `samples` runs each."""
    G, N = roles.shape
    R = np.repeat(roles, samples, 0)
    A = np.repeat(adj, samples, 0)
    out = execute(w, R, A, np.full(G * samples, family), np.full(G * samples, h), rng)
    return {"accuracy": out["correct"].reshape(G, samples).mean(1), "tokens": out["tokens"].reshape(G, samples).mean(1)}
