"""MasHost's params schema: every knob of `params/mashost.yaml`. MasHost has no public code:
the simulator, the MDP and HRPO are OUR READING of the abstract and the public reviews (spec B
§3.2-3.3); each knob says what is the paper's and what is ours."""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.pipeline.params import SCALES, Common, knob

from stages.mashost.sim import FAMILIES, KINDS

METHODS = ("mashost", "grpo_only", "reinforce", "no_exemption", "separate")


@dataclass
class RoleParams:
    """One role agent's pre-registered skills (one value per family, in FAMILIES order)."""

    kind: str = knob("expert", choices=KINDS, help="expert | decomposer | verifier | aggregator")
    skill: list[float] = knob(factory=lambda: [0.5] * 6, ge=0, le=1, help="accuracy at difficulty 1, per family")
    slope: list[float] = knob(factory=lambda: [0.1] * 6, ge=0, le=1, help="accuracy lost per difficulty level")
    detect: list[float] = knob(factory=lambda: [0.0] * 6, ge=0, le=1, help="verifier: chance to catch a wrong candidate")
    tokens: float = knob(100.0, gt=0, help="tokens of one call (before the per-input surcharge)")

    def validate(self) -> str | None:
        for name in ("skill", "slope", "detect"):
            if len(getattr(self, name)) != len(FAMILIES):
                return f"{name}: expected one value per family ({len(FAMILIES)})"
        return None


@dataclass
class SimParams:
    distractors: list[int] = knob(factory=lambda: [4, 4, 3, 3, 4, 4], ge=1,
                                  help="wrong answers a failing agent can give, per family (options - 1 for MC)")
    decompose_gain: int = knob(2, ge=0, help="difficulty levels a decomposer removes for its successors")
    false_alarm: float = knob(0.05, ge=0, le=1, help="a verifier re-solves a right candidate with this chance")
    token_per_input: float = knob(0.3, ge=0, help="token surcharge per incoming message (spec B §3.5: 30%)")


@dataclass
class RewardParams:
    """HRPO's tri-criteria reward (our reading of spec B §3.3)."""

    cost_coef: float = knob(0.2, ge=0, help="lambda_c: weight of tokens / cost_ref")
    cost_ref: float = knob(500.0, gt=0, help="tokens that cost lambda_c (about a 5-agent graph)")
    rationality_coef: float = knob(0.1, ge=0, help="lambda_r: weight of irrational nodes")
    step_coef: float = knob(0.5, ge=0, help="beta: weight of the normalised action-wise returns in the advantage")
    exemption_iters: float = knob(0.3, ge=0, le=1, help="share of the first training iterations exempt from the "
                                  "cost and rationality terms (our reading of 'exemption time')")


@dataclass
class PolicyParams:
    hidden: int = knob(64, ge=4, help="trunk width")
    role_dim: int = knob(16, ge=1, help="role embedding of the edge head")
    lr: float = knob(3e-3, gt=0, help="Adam lr")
    clip: float = knob(0.2, gt=0, help="PPO ratio clip (reviews: a PPO-like clipped objective)")
    epochs: int = knob(2, ge=1, help="passes over each batch")
    entropy: float = knob(0.01, ge=0, help="entropy bonus on the node distribution")
    max_nodes: int = knob(6, ge=2, help="T_max: construction steps (EXIT forced after)")


@dataclass
class ScaleSizes:
    iterations: int = knob(150, ge=1, help="training iterations")
    queries: int = knob(16, ge=1, help="queries per iteration")
    group: int = knob(8, ge=2, help="G: graphs sampled per query")
    test_per_cell: int = knob(20, ge=1, help="test queries per (family, difficulty)")
    eval_repeats: int = knob(4, ge=1, help="executions of each test graph")
    oracle_nodes: int = knob(3, ge=1, le=3, help="the oracle searches every graph of at most this many nodes")
    oracle_samples: int = knob(200, ge=1, help="Monte-Carlo runs per graph and (family, difficulty) to pick the oracle")


@dataclass
class MasHostParams(Common):
    difficulties: int = knob(5, ge=1, help="difficulty levels 1..D")
    roles: dict[str, RoleParams] = knob(factory=dict, help="the role pool (name -> skills), pre-registered")
    sim: SimParams = knob(factory=SimParams, help="the simulator")
    reward: RewardParams = knob(factory=RewardParams, help="HRPO's reward")
    policy: PolicyParams = knob(factory=PolicyParams, help="the construction policy")
    methods: list[str] = knob(factory=list, help="trained methods (HRPO and its ablations)")
    test_seed: int = knob(777, ge=0, help="seed of the test and validation queries")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, help="scale -> sizes")

    def validate(self) -> str | None:
        for scale in SCALES:
            if scale not in self.sizes:
                return f"sizes.{scale}: missing (every paper declares smoke, cpu and paper sizes)"
        need = {"solver", "math", "programmer", "retriever", "verifier", "aggregator"}
        if not need <= set(self.roles):
            return f"roles: expected at least {', '.join(sorted(need))} (the fixed topologies use them)"
        if len(self.sim.distractors) != len(FAMILIES):
            return "sim.distractors: expected one value per family"
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            return f"methods: '{bad[0]}' is not one of {', '.join(METHODS)}"
        if len(set(self.seeds)) != len(self.seeds):
            return "seeds: expected distinct seeds"
        return None


def sizes(p: MasHostParams) -> ScaleSizes:
    return p.sizes[p.scale]


def world(p: MasHostParams):
    import numpy as np

    from stages.mashost.sim import World

    names = list(p.roles)
    r = [p.roles[n] for n in names]
    return World(names, np.array([KINDS.index(x.kind) for x in r]), np.array([x.skill for x in r]),
                 np.array([x.slope for x in r]), np.array([x.detect for x in r]), np.array([x.tokens for x in r]),
                 np.array(p.sim.distractors), p.sim.decompose_gain, p.sim.false_alarm, p.sim.token_per_input)
