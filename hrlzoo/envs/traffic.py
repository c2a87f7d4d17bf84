"""Traffic-signal control in the SUMO simulator, with the reward factors of HERON's traffic task.

    env = TrafficSignalEnv(net="single-intersection", seconds=2000)   # a gymnasium.Env
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    info["factors"]            # the six factors of this decision step (FACTORS), scaled by `factor_scale`
    info["factors_unscaled"]   # the same in their own units

The simulator is Eclipse SUMO through libsumo (in-process, no GUI), driven by sumo-rl's
`SumoEnvironment` (one traffic signal, `single_agent=True`): an action picks the next green
phase and holds it `delta_time` simulated seconds (with a `yellow_time` yellow when it changes,
never before `min_green`); the observation is sumo-rl's default (the green phase one-hot, a
min-green flag, the density and the queue of every incoming lane, all in [0, 1]). The networks
are the ones sumo-rl ships (`NETS`); a scene's traffic is the network's route file, its random
departures drawn from the SUMO seed of the episode.

The factors (HERON, arXiv 2309.02632, traffic-light control: the six feedback signals of the
setup of Zhang et al. 2019, ranked "queue length > the average vehicle waiting time > the other
signals"), computed as IntelliLight computes them (Wei et al., KDD 2018; official code
wingsweihua/IntelliLight map_computor.py `get_rewards_from_sumo`, weights from
conf/one_run/sumo_agent.conf), over the incoming lanes of the signal at the end of each decision step:
    queue    sum of halting vehicles (speed < 0.1 m/s), lane.getLastStepHaltingNumber      weight -0.25
    wait     sum of the lanes' waiting times in minutes, lane.getWaitingTime / 60           weight -0.25
    delay    sum over lanes of 1 - mean speed / speed limit                                  weight -0.25
    switch   1 if this action changed the green phase (IntelliLight's "flickering")        weight -5
    passed   vehicles that left the incoming lanes (crossed the stop line) in this step    weight +1
    travel   their travel times so far in minutes, (now - departure) / 60                weight +1
`designed_reward(z) = sum_k DESIGNED_WEIGHTS[k] * z_k` on the unscaled factors is the reward
engineered for this setup (IntelliLight's), the "true" reward of HERON's traffic experiment.
IntelliLight measures every simulated second and a decision lasts 5 s here; we measure at the
decision (queue, wait, delay) and count over its 5 s (passed, travel): our reading.

libsumo runs one simulation per process: a second live TrafficSignalEnv in the same process
would silently take over the first one's simulation, so creating it raises. Batches of worlds
run one simulation per worker process (hrlzoo.envs.traffic.TrafficWorlds).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import gymnasium as gym
import numpy as np

FACTORS = ("queue", "wait", "delay", "switch", "passed", "travel")
DESIGNED_WEIGHTS = (-0.25, -0.25, -0.25, -5.0, 1.0, 1.0)  # IntelliLight conf/one_run/sumo_agent.conf
NETS = {  # name -> (net file, route file) inside sumo_rl/nets
    "single-intersection": ("single-intersection/single-intersection.net.xml",
                            "single-intersection/single-intersection.rou.xml"),
    "2way-single-intersection": ("2way-single-intersection/single-intersection.net.xml",
                                 "2way-single-intersection/single-intersection-vhvh.rou.xml"),
}
_LIVE: list = []  # the TrafficSignalEnv that owns this process's libsumo simulation


def _import_sumo_rl():
    """sumo_rl, with SUMO_HOME pointing at the eclipse-sumo wheel and libsumo as its traci
    (both read by sumo_rl at import; set here, before the first import, never changed after)."""
    import sumo

    os.environ.setdefault("SUMO_HOME", sumo.SUMO_HOME)
    os.environ.setdefault("LIBSUMO_AS_TRACI", "1")
    import sumo_rl

    return sumo_rl


def net_files(net: str) -> tuple[str, str]:
    if net not in NETS:
        raise ValueError(f"net: expected one of {sorted(NETS)}, got {net!r}")
    root = Path(_import_sumo_rl().__file__).parent / "nets"
    return tuple(str(root / f) for f in NETS[net])


def designed_reward(factors_unscaled: np.ndarray) -> float:
    """IntelliLight's engineered reward of one step's unscaled factors."""
    return float(np.dot(DESIGNED_WEIGHTS, factors_unscaled))


class TrafficSignalEnv(gym.Env):
    """One signalised intersection of SUMO as a gymnasium.Env (module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, net: str = "single-intersection", seconds: int = 2000, delta_time: int = 5,
                 yellow_time: int = 2, min_green: int = 5, factor_scale: Sequence[float] | None = None):
        if _LIVE and _LIVE[0] is not None:
            raise RuntimeError("a TrafficSignalEnv is already live in this process (libsumo runs one simulation per "
                               "process): close it first, or run more worlds with TrafficWorlds")
        sumo_rl = _import_sumo_rl()
        net_file, route_file = net_files(net)
        self.net, self.seconds, self.delta_time = net, int(seconds), int(delta_time)
        self.scale = np.ones(len(FACTORS)) if factor_scale is None else np.asarray(factor_scale, dtype=np.float64)
        if self.scale.shape != (len(FACTORS),):
            raise ValueError(f"factor_scale: expected {len(FACTORS)} numbers ({', '.join(FACTORS)})")
        self.sim = sumo_rl.SumoEnvironment(
            net_file=net_file, route_file=route_file, single_agent=True, use_gui=False, num_seconds=self.seconds,
            delta_time=self.delta_time, yellow_time=yellow_time, min_green=min_green, add_system_info=False,
            add_per_agent_info=False, sumo_warnings=False, sumo_seed=0)
        _LIVE[:] = [self]
        self.observation_space = self.sim.observation_space
        self.action_space = self.sim.action_space
        self._max_speed: dict[str, float] = {}
        self._approaching: set[str] = set()
        self._first_seen: dict[str, float] = {}

    # ---------------------------------------------------------------- gymnasium API
    def reset(self, seed: int | None = None, options=None):
        """A new episode; its SUMO seed is `seed`, or else drawn from the env's own stream (so
        unseeded resets continue one reproducible sequence of scenes, as gymnasium's do)."""
        super().reset(seed=seed)
        sumo_seed = int(self.np_random.integers(2**31 - 1))
        obs = self.sim.reset(seed=sumo_seed)[0]
        self._approaching, self._first_seen = set(), {}
        self._signal = self.sim.traffic_signals[self.sim.ts_ids[0]]
        self._lanes = list(self._signal.lanes)
        self._max_speed = {lane: self.sim.sumo.lane.getMaxSpeed(lane) for lane in self._lanes}
        self._observe_vehicles()
        return np.asarray(obs, dtype=np.float32), {"sumo_seed": sumo_seed}

    def step(self, action):
        phase_before = self._signal.green_phase
        obs, _, terminated, truncated, _ = self.sim.step(int(action))
        z = self._factors(switched=self._signal.green_phase != phase_before)
        info = {"factors_unscaled": z, "factors": z * self.scale}
        return np.asarray(obs, dtype=np.float32), designed_reward(z), bool(terminated), bool(truncated), info

    def close(self):
        if getattr(self, "sim", None) is not None:
            self.sim.close()
        if _LIVE and _LIVE[0] is self:
            _LIVE[:] = []

    # ---------------------------------------------------------------- factors
    def _observe_vehicles(self) -> set[str]:
        """Vehicles on the incoming lanes now; remembers each one's departure time."""
        sumo = self.sim.sumo
        here = set()
        for lane in self._lanes:
            here.update(sumo.lane.getLastStepVehicleIDs(lane))
        for v in here - self._first_seen.keys():
            self._first_seen[v] = sumo.vehicle.getDeparture(v)
        return here

    def _factors(self, switched: bool) -> np.ndarray:
        sumo, now = self.sim.sumo, self.sim.sim_step
        queue = sum(sumo.lane.getLastStepHaltingNumber(lane) for lane in self._lanes)
        wait = sum(sumo.lane.getWaitingTime(lane) for lane in self._lanes) / 60.0
        delay = sum(1.0 - sumo.lane.getLastStepMeanSpeed(lane) / self._max_speed[lane] for lane in self._lanes)
        here = self._observe_vehicles()
        left = self._approaching - here
        travel = sum(now - self._first_seen.pop(v) for v in left) / 60.0
        self._approaching = here
        return np.array([queue, wait, delay, float(switched), float(len(left)), travel], dtype=np.float64)


# ---------------------------------------------------------------- several worlds, one process each
def _serve(conn, kwargs: dict) -> None:
    """A worker process: one TrafficSignalEnv, driven by ("reset", seed) / ("step", action) /
    ("close", None) messages; every answer is a tuple of numpy values (or the exception)."""
    env = None
    try:
        env = TrafficSignalEnv(**kwargs)
        conn.send(("ok", (env.observation_space, env.action_space)))
        while True:
            cmd, arg = conn.recv()
            if cmd == "reset":
                obs, info = env.reset(seed=arg)
                conn.send(("ok", (obs, info["sumo_seed"])))
            elif cmd == "step":
                obs, r, term, trunc, info = env.step(arg)
                conn.send(("ok", (obs, r, term, trunc, info["factors"], info["factors_unscaled"])))
            elif cmd == "close":
                break
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        if env is not None:
            env.close()
        conn.close()


class TrafficWorlds:
    """N TrafficSignalEnv worlds, each in a worker process of its own (libsumo runs one
    simulation per process), stepped in lockstep: `reset(i, seed)`, `step(actions)` ->
    obs [N, d], designed reward [N], terminated [N], truncated [N], factors [N, 6] (scaled),
    factors_unscaled [N, 6] (numpy). No auto-reset: the caller resets finished worlds."""

    def __init__(self, num_envs: int, **env_kwargs):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited simulation, no torch threads
        self.num_envs = int(num_envs)
        self.pipes, self.procs = [], []
        for _ in range(self.num_envs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, env_kwargs), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)
        spaces = [self._recv(p) for p in self.pipes]
        self.observation_space, self.action_space = spaces[0]

    @staticmethod
    def _recv(pipe):
        status, value = pipe.recv()
        if status != "ok":
            raise RuntimeError(f"traffic world: {value}")
        return value

    def reset(self, idx, seeds) -> np.ndarray:
        """Reset worlds `idx` with SUMO scene seeds `seeds`; returns their observations [len(idx), d]."""
        for i, s in zip(idx, seeds):
            self.pipes[i].send(("reset", int(s)))
        return np.stack([self._recv(self.pipes[i])[0] for i in idx]) if len(idx) else np.zeros((0,))

    def step(self, actions):
        for pipe, a in zip(self.pipes, np.asarray(actions).reshape(self.num_envs)):
            pipe.send(("step", int(a)))
        out = [self._recv(p) for p in self.pipes]
        obs, rew, term, trunc, z, zu = zip(*out)
        return (np.stack(obs), np.asarray(rew, dtype=np.float64), np.asarray(term, dtype=bool),
                np.asarray(trunc, dtype=bool), np.stack(z), np.stack(zu))

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        self.pipes, self.procs = [], []

    def __del__(self):
        if getattr(self, "procs", None):
            self.close()


# ---------------------------------------------------------------- the batched convention
def _batched_base():
    from hrlzoo.envs.batched import BatchedEnv

    return BatchedEnv


class TrafficBatched(_batched_base()):
    """N worlds of TrafficSignalEnv behind hrlzoo.envs.batched's convention (torch in and out,
    SAME_STEP auto-reset, one generator per world: world i's scenes depend on its seed alone),
    for PPO and the other learners of hrlzoo.algos. Each world runs in a worker process
    (TrafficWorlds). Every episode is `seconds / delta_time` decisions, then truncated.

    After each step, `factors` [N, 6] (scaled) and `factors_unscaled` hold that step's factors
    and `prev_obs` the observations the actions were taken in. The reward is the designed one,
    or `reward_fn(prev_obs, factors) -> [N]` when set (a linear reward or a learned reward
    model; the designed reward of the step stays in `designed` [N])."""

    def __init__(self, num_envs: int, net: str = "single-intersection", seconds: int = 2000, delta_time: int = 5,
                 yellow_time: int = 2, min_green: int = 5, factor_scale: Sequence[float] | None = None,
                 device="cpu", autoreset: bool = True, reward_fn=None):
        import torch

        self.worlds = TrafficWorlds(num_envs, net=net, seconds=seconds, delta_time=delta_time, yellow_time=yellow_time,
                                    min_green=min_green, factor_scale=factor_scale)
        self.single_observation_space = self.worlds.observation_space
        self.single_action_space = self.worlds.action_space
        super().__init__(num_envs, int(seconds) // int(delta_time), device, autoreset)
        self.reward_fn = reward_fn
        d = self.single_observation_space.shape[0]
        self._obs = np.zeros((num_envs, d), dtype=np.float32)
        self.prev_obs = torch.zeros(num_envs, d, device=self.device)
        self.factors = torch.zeros(num_envs, len(FACTORS), device=self.device, dtype=torch.float64)
        self.factors_unscaled = self.factors.clone()
        self.designed = torch.zeros(num_envs, device=self.device, dtype=torch.float64)

    def _reset_worlds(self, idx):
        idx = list(idx)
        seeds = [int(self.np_random[i].integers(2**31 - 1)) for i in idx]
        if idx:
            self._obs[idx] = self.worlds.reset(idx, seeds)

    def _step_worlds(self, action):
        import torch

        self.prev_obs = torch.as_tensor(self._obs.copy(), device=self.device)
        obs, rew, term, trunc, z, zu = self.worlds.step(action.detach().cpu().numpy())
        self._obs[:] = obs
        t = lambda x, dt: torch.as_tensor(x, device=self.device, dtype=dt)  # noqa: E731
        self.factors, self.factors_unscaled, self.designed = t(z, torch.float64), t(zu, torch.float64), t(rew, torch.float64)
        reward = self.designed if self.reward_fn is None else self.reward_fn(self.prev_obs, self.factors)
        return reward.to(torch.float32), t(term, torch.bool), t(trunc, torch.bool)

    def _observe(self):
        import torch

        return torch.as_tensor(self._obs.copy(), device=self.device)

    def close(self):
        self.worlds.close()
