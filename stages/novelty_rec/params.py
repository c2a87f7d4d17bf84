"""The novelty-seeking recommender's params schema: every knob of `params/novelty_rec.yaml`.

The paper (Li, Wang, Chi, Chen, arXiv 2306.01476) has no public code and only its abstract could
be read (spec B §5.1): the simulator, the agent and every number here are OUR READING of spec B
§5.3-5.5; each knob says which numbers the spec gives and which are ours."""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.pipeline.params import SCALES, Common, knob

METHODS = ("hrl", "flat", "flat_engagement", "no_static", "no_dynamic", "oracle")


@dataclass
class SimParams:
    """The user simulator (stages/novelty_rec/sim.py), pre-registered before any result."""

    nu_beta: list[float] = knob(factory=lambda: [2.0, 5.0], gt=0, help="Beta(a, b) of the static novelty preference (spec: 2, 5)")
    rho: float = knob(0.5, ge=0, lt=1, help="AR(1) coefficient of the session term eps across sessions (spec: 0.5)")
    sigma: float = knob(1.0, ge=0, help="stationary std of eps (spec: 1.0)")
    interest_alpha: float = knob(0.3, gt=0, help="Dirichlet concentration of the topic interests (ours)")
    known_topics: int = knob(3, ge=1, help="topics consumed before the first session: the user's largest interests")
    quality_std: float = knob(1.0, ge=0, help="std of item quality q ~ N(0, std)")
    click_bias: float = knob(-1.5, ge=-10, le=10, help="bias of the click logit (ours; within +-10)")
    affinity: float = knob(6.0, ge=0, help="a: weight of theta_u[topic] on a consumed topic")
    quality: float = knob(0.5, ge=0, help="b: weight of item quality")
    novelty: float = knob(4.0, ge=0, help="c: weight of n (p_us - 0.5) on a novel topic")
    fatigue: float = knob(0.6, ge=0, help="d: logit lost per earlier showing of the topic in this session")
    interest_gain: float = knob(0.3, ge=0, help="interest mass a clicked novel topic gains (the delayed payoff)")

    def validate(self) -> str | None:
        if len(self.nu_beta) != 2:
            return "nu_beta: expected two numbers [a, b]"
        return None


@dataclass
class RewardParams:
    """Spec B §5.3: r_t = click + novelty 1[new topic] + diversity (1 - max cos with the session's items)."""

    novelty: float = knob(0.2, ge=0, help="lambda_nov")
    diversity: float = knob(0.2, ge=0, help="lambda_div")
    goal: float = knob(0.5, ge=0, help="low level only: weight of -|novel share so far - g| (spec's optional term)")


@dataclass
class AgentParams:
    goals: list[float] = knob(factory=lambda: [0.0, 0.25, 0.5, 0.75], ge=0, le=1, min_items=2, unique=True,
                              help="the high level's novelty goals: target share of novel items (spec B §5.3)")
    gamma_low: float = knob(0.9, ge=0, le=1, help="discount within a session (spec B §5.3)")
    gamma_high: float = knob(0.9, ge=0, le=1, help="discount across sessions (ours)")
    gae_lambda: float = knob(0.95, ge=0, le=1, help="GAE lambda of both levels")
    hidden: list[int] = knob(factory=lambda: [64, 64], ge=1, min_items=1, help="hidden layers of policies and values")
    lr: float = knob(1e-3, gt=0, help="Adam learning rate of both levels")
    epochs: int = knob(4, ge=1, help="PPO passes over each rollout")
    minibatch: int = knob(512, ge=1, help="transitions per gradient step, per seed")
    clip: float = knob(0.2, gt=0, help="PPO ratio clip")
    entropy: float = knob(0.01, ge=0, help="entropy bonus")
    embed_long: int = knob(16, ge=1, help="width of the pretrained long-term user encoder")
    embed_session: int = knob(8, ge=1, help="width of the pretrained session encoder")


@dataclass
class EncoderParams:
    lr: float = knob(3e-3, gt=0, help="Adam learning rate of the click model on the logs")
    batch: int = knob(512, ge=1, help="logged interactions per step")


@dataclass
class ScaleSizes:
    topics: int = knob(20, ge=2, help="topics (spec: 20)")
    items: int = knob(200, ge=2, help="items, topics x items per topic (spec: 500)")
    session_len: int = knob(10, ge=1, help="recommendations per session (spec: 10)")
    sessions: int = knob(8, ge=1, help="sessions per user (spec: 8)")
    log_users: int = knob(2000, ge=1, help="users in the logs of the behaviour policy (spec: 2,000)")
    encoder_epochs: int = knob(4, ge=1, help="passes of the click model over the logs")
    iterations: int = knob(150, ge=1, help="training iterations (one user lifetime per world each)")
    users_per_seed: int = knob(64, ge=1, help="fresh users simulated per seed and iteration")
    test_users: int = knob(500, ge=1, help="test users (the same for every method and seed)")


@dataclass
class NoveltyRecParams(Common):
    catalogue_seed: int = knob(11, ge=0, help="seed of the item catalogue")
    log_seed: int = knob(21, ge=0, help="seed of the logged users and the behaviour policy")
    test_seed: int = knob(777, ge=0, help="seed of the test users")
    sim: SimParams = knob(factory=SimParams, help="the user simulator")
    reward: RewardParams = knob(factory=RewardParams, help="the reward terms")
    agent: AgentParams = knob(factory=AgentParams, help="the hierarchical agent and the flat baselines")
    encoder: EncoderParams = knob(factory=EncoderParams, help="the encoders' pretraining on the logs")
    methods: list[str] = knob(factory=lambda: list(METHODS), min_items=1, unique=True, choices=METHODS,
                              help="trained methods")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, keys=SCALES, all_keys=True, help="scale -> sizes")

    def validate(self) -> str | None:
        for scale, s in self.sizes.items():
            if s.items % s.topics:
                return f"sizes.{scale}.items: expected a multiple of topics ({s.topics})"
            if self.sim.known_topics >= s.topics:
                return f"sim.known_topics: expected fewer than sizes.{scale}.topics ({s.topics})"
        return None


def sizes(p: NoveltyRecParams) -> ScaleSizes:
    return p.sizes[p.scale]
