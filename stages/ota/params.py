"""OTA/HIQL's params schema: every knob of `params/ota.yaml`, with its range and meaning.

Defaults follow seohongpark/ogbench `impls/agents/hiql.py` `get_config()` and
`impls/hyperparameters.sh` (pointmaze rows), ota-v/ota-v `agents/ota.py` (spec A §2.3), and
`data_gen_scripts/commands.sh` for the datasets. Where we differ, the help text says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.envs.pointmaze import DATASET_TYPES, MAZES
from hrlzoo.gcrl.dataset import OPTION_RULES
from hrlzoo.pipeline.params import SCALES, Common, knob

FLAT_METHODS = ("gcbc", "gcivl")
VALUE_KINDS = ("low", "gcivl", "high")  # HIQL's V^l, GCIVL's value, OTA's V^h (one per n)


@dataclass
class AgentParams:
    lr: float = knob(3e-4, gt=0, help="Adam learning rate of every network (OGBench: 3e-4)")
    expectile: float = knob(0.7, gt=0, lt=1, help="IVL expectile kappa (OGBench: 0.7)")
    tau: float = knob(0.005, gt=0, le=1, help="EMA rate of the target values (OGBench: 0.005)")
    rep_dim: int = knob(10, ge=1, help="size of HIQL's subgoal representation phi (OGBench: 10)")
    subgoal_steps: int = knob(25, ge=1, help="k: the low level's subgoal is s_{t+k} (OGBench: 25)")
    low_alpha: float = knob(3.0, ge=0, help="low-level AWR temperature (hyperparameters.sh pointmaze: 3.0)")
    high_alpha: float = knob(3.0, ge=0, help="high-level AWR temperature (hyperparameters.sh pointmaze: 3.0)")
    gcivl_alpha: float = knob(10.0, ge=0, help="GCIVL's AWR temperature (hyperparameters.sh pointmaze: 10.0)")
    value_p_cur: float = knob(0.2, ge=0, le=1, help="value goals: P(g = s_t) (HIQL: 0.2; ota.py: 0.0, see report)")
    value_p_traj: float = knob(0.5, ge=0, le=1, help="value goals: P(g = a geometric future state) (0.5)")
    value_p_rand: float = knob(0.3, ge=0, le=1, help="value goals: P(g = a random state) (HIQL: 0.3; ota.py: 0.5)")
    actor_p_rand: float = knob(0.0, ge=0, le=1, help="high-actor goals: P(random state) (navigate: 0; stitch: 0.5)")
    layer_norm: bool = knob(True, help="LayerNorm in the value MLPs (OGBench: true)")
    option_rule: str = knob("official", choices=OPTION_RULES,
                            help="OTA's option targets: official (ota-v: r = 0, m = 0 iff the option reaches g; "
                                 "random goals end at the trajectory's last state T) | hiql_reward (our earlier "
                                 "reading, a deviation: HIQL's reward r = 0 iff g = s_t, bootstrap, end at T + 1)")

    def validate(self) -> str | None:
        total = self.value_p_cur + self.value_p_traj + self.value_p_rand
        if abs(total - 1.0) > 1e-6:
            return f"value_p_cur + value_p_traj + value_p_rand = {total}: expected 1"
        return None


@dataclass
class DataSizes:
    """One maze's generated datasets."""

    episodes: int = knob(100, ge=1, help="navigate episodes (OGBench: 1000; giant 500)")
    episode_steps: int = knob(1001, ge=2, help="records per navigate episode (OGBench: 1001; giant 2001)")
    stitch_episodes: int = knob(500, ge=1, help="stitch episodes of 201 records (OGBench: 5000)")


@dataclass
class TrainSizes:
    hidden: list[int] = knob(factory=lambda: [512, 512, 512], ge=1, min_items=1, help="hidden widths of every MLP (OGBench: 512x3)")
    batch_size: int = knob(1024, ge=1, help="minibatch per seed (OGBench: 1024)")
    value_steps: int = knob(1_000_000, ge=1, help="gradient steps of each value (OGBench: 1M, joint)")
    actor_steps: int = knob(1_000_000, ge=1, help="gradient steps of each actor (OGBench: 1M, joint)")
    log_every: int = knob(1000, ge=1, help="gradient steps between logged losses")
    curve_points: int = knob(5, ge=1, help="actor checkpoints (evenly spaced, the last one final) for the success curves")
    discount: dict[str, float] = knob(factory=dict, gt=0, lt=1, keys=MAZES, all_keys=True,
                                      help="gamma per maze (OGBench: 0.99; 0.995 on giant)")


@dataclass
class EvalSizes:
    episodes: int = knob(50, ge=1, help="evaluation episodes per task and seed (OGBench: 50)")
    max_steps: int = knob(1000, ge=1, help="steps per evaluation episode (ogbench's limit: 1000)")
    diag_pairs: int = knob(4096, ge=16, help="(s_t, s_t+k, g) triples scored for the advantage-sign diagnostic")
    curve_episodes: int = knob(1, ge=1, help="episodes per task and seed at each checkpoint of the success curves")


@dataclass
class ScaleSizes:
    data: dict[str, DataSizes] = knob(factory=dict, keys=MAZES, all_keys=True, help="maze -> dataset sizes")
    train: TrainSizes = knob(factory=TrainSizes, help="networks and gradient steps")
    eval: EvalSizes = knob(factory=EvalSizes, help="evaluation and diagnostics")


@dataclass
class OTAParams(Common):
    dataset: str = knob("navigate", choices=DATASET_TYPES, help="which generated dataset the agents train on")
    noise: float = knob(0.5, ge=0, help="Gaussian action noise of the data-generating oracle (OGBench: 0.5)")
    agent: AgentParams = knob(factory=AgentParams, help="hyper-parameters shared by the agents")
    abstraction_factors: dict[str, list[int]] = knob(
        factory=dict, keys=MAZES, all_keys=True, help="maze -> OTA's abstraction factors n to train (ota.py default 5; n = 1 is HIQL)")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, keys=SCALES, all_keys=True, help="scale -> sizes")

    def validate(self) -> str | None:
        for maze in MAZES:
            ns = self.abstraction_factors.get(maze)
            if not ns or any(n < 2 for n in ns) or len(set(ns)) != len(ns):
                return (f"abstraction_factors.{maze} = {ns}: expected distinct integers >= 2 "
                        "(n = 1 is HIQL itself)")
        return None


def sizes(p: OTAParams) -> ScaleSizes:
    return p.sizes[p.scale]


def ota_methods(p: OTAParams, maze: str) -> list[str]:
    """OTA's runs on a maze: ota_n<k> for every abstraction factor k of params."""
    return [f"ota_n{n}" for n in p.abstraction_factors[maze]]


def methods(p: OTAParams, maze: str) -> list[str]:
    """Everything evaluated on a maze, baselines first."""
    return ["gcbc", "gcivl", "hiql", *ota_methods(p, maze), "hiql_oracle"]


def checkpoints(steps: int, points: int) -> list[int]:
    """`points` evenly spaced gradient steps ending at `steps` (the success curves' x values)."""
    return sorted({max(1, round(steps * (i + 1) / points)) for i in range(points)})
