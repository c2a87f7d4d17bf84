"""WorldRFT's core equations against hand-computed values: the Gaussian log-likelihood of
trajectory Gaussianisation, GRPO's advantages and clipped objective with the k3 KL, the
reward's collision term on a constructed collision, LIR's grid_sample gathering at known
waypoints, the geometry targets, HPD's anchors and conditioning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrlzoo.envs.driving.config import RasterConfig, SimConfig
from hrlzoo.envs.driving.raster import CHANNELS
from stages.worldrft import method
from stages.worldrft.nets import Dims, gather_local, make_planner, waypoint_grid

CFG = SimConfig()
RC = RasterConfig()


# ---------------------------------------------------------------- trajectory Gaussianisation
def test_gaussian_logprob_by_hand_and_against_torch():
    mu = torch.zeros(1, 2, 2)
    sigma = torch.tensor([[0.5], [2.0]])  # (T, 1)
    tau = torch.tensor([[[0.5, 0.0], [2.0, -4.0]]])
    # z = [[1, 0], [1, -2]]: sum of -z^2/2 = -(1 + 0 + 1 + 4)/2 = -3; sum of -log sigma = -2 (log .5 + log 2) = 0
    expected = -3.0 - 4 * 0.5 * math.log(2 * math.pi)
    assert method.gaussian_logprob(tau, mu, sigma).item() == pytest.approx(expected, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 6, 2, generator=g)
    sig = method.sigma_schedule(6, (0.3, 1.5), (0.1, 0.3))
    tau = method.sample_trajectories(mu, sig, 5, g)
    ref = torch.distributions.Normal(mu[:, None], sig).log_prob(tau).sum((-2, -1))
    assert torch.allclose(method.gaussian_logprob(tau, mu[:, None], sig), ref, atol=1e-5)


def test_sigma_schedule_and_sample_spread():
    sig = method.sigma_schedule(6, (0.3, 1.5), (0.1, 0.3))
    assert sig.shape == (6, 2)
    assert sig[0].tolist() == pytest.approx([0.3, 0.1]) and sig[-1].tolist() == pytest.approx([1.5, 0.3])
    assert torch.allclose(sig[1:, 0] - sig[:-1, 0], torch.full((5,), 0.24))
    assert torch.allclose(sig[1:, 1] - sig[:-1, 1], torch.full((5,), 0.04))
    tau = method.sample_trajectories(torch.zeros(2, 6, 2), sig, 4000, torch.Generator().manual_seed(1))
    assert tau.shape == (2, 4000, 6, 2)
    assert torch.allclose(tau.std(1).mean(0), sig, rtol=0.05)


def test_correlated_gaussian_against_torch_multivariate_normal():
    """rho > 0: the AR(1)-correlated Gaussian's log-likelihood equals torch's
    MultivariateNormal with Sigma[i, j] = sigma_i sigma_j rho^|i-j| per coordinate, and its
    samples have that covariance (unit-variance noise, so sigma is still each waypoint's std)."""
    rho, T = 0.8, 6
    sig = method.sigma_schedule(T, (0.5, 2.0), (0.2, 0.6))
    g = torch.Generator().manual_seed(2)
    mu = torch.randn(3, T, 2, generator=g, dtype=torch.float64)
    sig = sig.double()
    tau = method.sample_trajectories(mu, sig, 5, g, rho)
    lag = torch.arange(T)
    corr = rho ** (lag[:, None] - lag[None, :]).abs().double()
    ref = 0
    for d in range(2):
        cov = sig[:, d, None] * sig[None, :, d] * corr
        ref = ref + torch.distributions.MultivariateNormal(mu[:, None, :, d], cov).log_prob(tau[..., d])
    assert torch.allclose(method.gaussian_logprob(tau, mu[:, None], sig, rho), ref, atol=1e-9)
    # rho = 0 is the diagonal Gaussian
    assert torch.allclose(method.gaussian_logprob(tau, mu[:, None], sig, 0.0),
                          torch.distributions.Normal(mu[:, None], sig).log_prob(tau).sum((-2, -1)))
    many = method.sample_trajectories(torch.zeros(1, T, 2, dtype=torch.float64), sig, 20000,
                                      torch.Generator().manual_seed(3), rho)[0, :, :, 0]
    emp = torch.cov(many.T)
    assert torch.allclose(emp, sig[:, 0, None] * sig[None, :, 0] * corr, rtol=0.06, atol=0.02)


def test_collision_signal_splits_the_advantage_by_hand():
    """Two groups of 4: one mixed (2 of 4 collide), one where every sample collides. The collision
    part of the mixed group's advantage is -w (c - 0.5) / std(R); the other group has none."""
    col = np.array([[True, False, True, False], [True, True, True, True]])
    l2 = np.array([[1.0, 1.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    out = {"collision": col, "l2": l2, "ep": np.ones((2, 4))}
    r = method.reward(out, 1.0, 5.0, 0.0)
    s = method.collision_signal(out, r, 5.0)
    std0, std1 = np.std(r[0], ddof=1) + 1e-6, np.std(r[1], ddof=1) + 1e-6
    assert s["groups"] == 2 and s["samples"] == 8 and s["mixed_groups"] == 1 and s["signal_groups"] == 1
    assert s["col_adv_abs"] == pytest.approx(4 * 5.0 * 0.5 / std0)
    adv = method.advantages(torch.from_numpy(r)).numpy()
    assert s["adv_abs"] == pytest.approx(np.abs(adv).sum(), rel=1e-6)
    # the advantage is linear in the reward's terms: the collision part + the L2 part = A
    a_l2 = -(l2[0] - l2[0].mean()) / std0
    a_col = -5.0 * (col[0] - col[0].mean()) / std0
    assert np.allclose(a_l2 + a_col, adv[0], atol=1e-6)
    # without a collision weight there is no collision advantage, though the flag still varies
    s0 = method.collision_signal(out, method.reward(out, 1.0, 0.0, 0.0), 0.0)
    assert s0["mixed_groups"] == 1 and s0["signal_groups"] == 0 and s0["col_adv_abs"] == 0


def test_interactive_frames_on_constructed_scenes():
    """Frame 0: a stopped car 30 m ahead in the ego lane (constant velocity at 15 m/s reaches it
    within 3 s); frame 1: the same car 30 m ahead one lane over; frame 2: a car driving beside the
    expert, 0.5 m between their sides (only a margin of 1 m finds it); frame 3: an empty road."""
    T, A = CFG.horizon, 2
    t = CFG.dt * np.arange(1, T + 1)
    expert = np.zeros((4, T, 3), np.float32)
    expert[..., 0] = 12.0 * t  # the expert slows below constant velocity
    agents = np.zeros((4, T, A, 5), np.float32)
    agents[..., 3:] = (4.5, 1.9)
    valid = np.zeros((4, T, A), bool)
    agents[0, :, 0, 0], valid[0, :, 0] = 30.0, True
    agents[1, :, 0, :2], valid[1, :, 0] = (30.0, 3.75), True
    agents[2, :, 0, 0], agents[2, :, 0, 1], valid[2, :, 0] = 12.0 * t, 1.9 + 0.5, True
    frames = {"expert_future": expert, "agents_future": agents, "agents_valid": valid,
              "ego_size": np.tile(np.float32([4.5, 1.9]), (4, 1)), "ego_state": np.tile(np.float32([15, 0, 0, 0]), (4, 1))}
    assert method.interactive_frames(frames, CFG, 0.0).tolist() == [True, False, False, False]
    assert method.interactive_frames(frames, CFG, 1.0).tolist() == [True, False, True, False]


def test_mixed_batch_order_over_represents_the_pool():
    from stages.worldrft.data import batch_order, mixed_batch_order

    pool = np.array([3, 7, 11, 20, 31])
    order = mixed_batch_order(100, pool, 0.5, 8, 30, seed=0)
    assert len(order) == 30 and all(len(b) == 8 for b in order)
    assert all(set(b[:4].tolist()) <= set(pool.tolist()) and len(set(b[:4].tolist())) == 4 for b in order)
    counts = np.bincount(np.concatenate(order), minlength=100)
    assert counts[pool].min() >= 30 * 4 // 5  # the pool in epochs: 24 draws each at least
    assert np.delete(counts, pool).max() <= 5  # the rest: 120 uniform draws over 100 frames
    # a pool smaller than its share of the batch gives each of its frames once per batch
    assert all(sorted(b[:3].tolist()) == [3, 7, 11] for b in mixed_batch_order(100, [3, 7, 11], 0.5, 8, 4, 0))
    assert [b.tolist() for b in mixed_batch_order(100, pool, 0.5, 8, 30, seed=0)] == [b.tolist() for b in order]
    # share 0 (or an empty pool) is the uniform order itself
    assert [b.tolist() for b in mixed_batch_order(100, pool, 0.0, 8, 5, 1)] == [b.tolist() for b in batch_order(100, 8, 5, 1)]
    assert [b.tolist() for b in mixed_batch_order(100, [], 0.5, 8, 5, 1)] == [b.tolist() for b in batch_order(100, 8, 5, 1)]


# ---------------------------------------------------------------- GRPO
def test_group_advantages_by_hand():
    r = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])
    a = method.advantages(r)
    s = math.sqrt(5 / 3)  # unbiased std of 1, 2, 3, 4
    assert torch.allclose(a[0], torch.tensor([-1.5, -0.5, 0.5, 1.5]) / (s + 1e-6), atol=1e-6)
    assert torch.equal(a[1], torch.zeros(4))  # a uniform group carries no signal
    # normalised within each group only: shifting one group's rewards leaves the other's advantages
    r2 = r.clone()
    r2[1] += torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert torch.equal(method.advantages(r2)[0], a[0])


def test_grpo_loss_by_hand():
    # four samples: ratio 1.5 or 0.5, advantage +1 or -1; clip 0.2
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5]])).requires_grad_(True)
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    ref = torch.log(torch.tensor([[1.0, 2.0, 1.0, 0.25]]))
    beta = 0.1
    loss, st = method.grpo_loss(logp, old, ref, adv, clip_eps=0.2, kl_coef=beta)
    # -min(rho A, clip(rho) A): -min(1.5, 1.2) = -1.2; -min(-1.5, -1.2) = 1.5; -min(.5, .8) = -.5; -min(-.5, -.8) = .8
    pg = [-1.2, 1.5, -0.5, 0.8]
    ratio_ref = [1 / 1.5, 2 / 1.5, 1 / 0.5, 0.25 / 0.5]  # pi_ref / pi_theta
    kl = [q - math.log(q) - 1 for q in ratio_ref]
    assert loss.item() == pytest.approx(np.mean(pg) + beta * np.mean(kl), abs=1e-6)
    assert st["clipfrac"] == pytest.approx(0.5)  # samples 1 and 4 take the clipped term
    loss.backward()
    # d/dlogp: clipped samples get no policy-gradient term, only the KL's: (1 - pi_ref/pi) / 4 * beta
    g = logp.grad[0]
    for i, (rho, a) in enumerate(((1.5, 1.0), (1.5, -1.0), (0.5, 1.0), (0.5, -1.0))):
        clipped = (rho > 1.2 and a > 0) or (rho < 0.8 and a < 0)
        d_pg = 0.0 if clipped else -a * rho
        assert g[i].item() == pytest.approx((d_pg + beta * (1 - ratio_ref[i])) / 4, abs=1e-6)


def test_grpo_step_moves_the_mean_towards_the_better_samples():
    mu = torch.zeros(1, 6, 2, requires_grad=True)
    sig = method.sigma_schedule(6, (0.5, 0.5), (0.5, 0.5))
    tau = method.sample_trajectories(mu.detach(), sig, 8, torch.Generator().manual_seed(3))
    target = torch.full((6, 2), 1.0)
    rew = -((tau[0] - target) ** 2).sum((-2, -1))[None]  # closer to (1, 1) is better
    adv = method.advantages(rew)
    old = method.gaussian_logprob(tau, mu.detach()[:, None], sig)
    loss, _ = method.grpo_loss(method.gaussian_logprob(tau, mu[:, None], sig), old, old, adv, 0.2, 0.0)
    loss.backward()
    assert (-mu.grad * (target - mu.detach())).sum() > 0  # a descent step moves mu towards the target


# ---------------------------------------------------------------- the reward
def one_agent_frame(agent_x: float, step: int) -> dict:
    """A frame with the ego at 20 m/s in the middle lane and one agent, present only at `step`,
    centred `agent_x` metres ahead in the ego's lane."""
    T, A = CFG.horizon, 3
    expert = np.zeros((1, T, 3), np.float32)
    expert[0, :, 0] = 10.0 * np.arange(1, T + 1)
    fut = np.zeros((1, T, A, 5), np.float32)
    fut[..., 3:] = (4.5, 1.9)
    fut[0, :, :, 0] = -500.0
    valid = np.zeros((1, T, A), bool)
    fut[0, step, 0, :2] = (agent_x, 0.0)
    valid[0, step, 0] = True
    return {"expert_future": expert, "agents_future": fut, "agents_valid": valid,
            "ego_size": np.array([[4.6, 1.9]], np.float32), "ego_pose": np.array([[0.0, 1.5 * CFG.lane_width, 0.0]])}


def test_reward_collision_term_on_a_constructed_collision():
    frame = one_agent_frame(agent_x=30.0, step=2)  # the agent sits on the expert's 1.5 s waypoint
    on_path = frame["expert_future"][:, None, :, :2].astype(np.float64)
    beside = on_path + np.array([0.0, 3.75])  # the same speed, one lane to the left
    tau = np.concatenate([on_path, beside], 1)  # (B=1, G=2, T, 2)
    out = method.trajectory_outcomes(tau, frame, CFG)
    assert out["collision"].tolist() == [[True, False]]
    assert np.allclose(out["l2"], [[0.0, 3.75]]) and np.allclose(out["ep"], 1.0)
    assert np.allclose(method.reward(out, l2=1.0, collision=5.0, progress=2.0), [[-5.0 + 2.0, -3.75 + 2.0]])
    assert np.allclose(method.reward(out, l2=1.0, collision=0.0, progress=0.0), [[0.0, -3.75]])  # L2 only
    # the same agent one step later is not where the ego is then: no collision
    later = method.trajectory_outcomes(on_path, one_agent_frame(agent_x=30.0, step=3), CFG)
    assert not later["collision"].any()


def test_reward_progress_term_punishes_stopping():
    frame = one_agent_frame(agent_x=-500.0, step=0)
    half = frame["expert_future"][:, None, :, :2].astype(np.float64) * np.array([0.5, 1.0])
    out = method.trajectory_outcomes(half, frame, CFG)
    assert out["ep"][0, 0] == pytest.approx(0.5)  # half the expert's progress
    assert method.reward(out, 0.0, 0.0, 2.0)[0, 0] == pytest.approx(1.0)


# ---------------------------------------------------------------- LIR's local features
def coordinate_map(size: int) -> torch.Tensor:
    """(1, 2, size, size): the ego-frame x and y of every cell centre of a map covering the raster."""
    cell = RC.size / size
    centre = (np.arange(size) + 0.5) * cell - 0.5  # in raster pixel units
    x = (RC.ego_row - centre) * RC.resolution
    y = (RC.size // 2 - centre) * RC.resolution
    xx, yy = np.meshgrid(x, y, indexing="ij")  # row -> x, col -> y
    return torch.tensor(np.stack([xx, yy])[None], dtype=torch.float32)


@pytest.mark.parametrize("size", [8, 16, 64])
def test_gather_local_at_known_waypoints(size):
    fmap = coordinate_map(size)
    cells = np.array([[0, 0], [3, 5], [size - 1, size // 2], [size // 2, size - 1]])
    pts = torch.stack([fmap[0, 0, cells[:, 0], cells[:, 1]], fmap[0, 1, cells[:, 0], cells[:, 1]]], -1)[None]
    got = gather_local([fmap], pts, RC)
    assert torch.allclose(got, pts, atol=1e-4)  # the value stored at each cell centre
    # between cell centres bilinear interpolation of a linear map returns the point itself
    g = torch.Generator().manual_seed(0)
    lo, hi = fmap[0].flatten(1).min(1).values, fmap[0].flatten(1).max(1).values
    inner = lo + (hi - lo) * torch.rand(20, 2, generator=g)
    assert torch.allclose(gather_local([fmap], inner[None], RC), inner[None], atol=1e-3)
    # two maps are concatenated channel-wise
    both = gather_local([fmap, 2 * fmap], pts, RC)
    assert both.shape == (1, 4, 4) and torch.allclose(both[..., 2:], 2 * pts, atol=1e-3)


def test_waypoint_grid_corners():
    # the raster's pixel (ego_row, size // 2) is the ego: grid coordinates of that pixel centre
    g = waypoint_grid(torch.zeros(2), RC)
    assert g.tolist() == pytest.approx([(2 * (RC.size // 2) + 1) / RC.size - 1, (2 * RC.ego_row + 1) / RC.size - 1])
    ahead = waypoint_grid(torch.tensor([RC.ego_row * RC.resolution, 0.0]), RC)  # the top row's centre
    assert ahead[1].item() == pytest.approx(1 / RC.size - 1)


def test_local_features_move_with_the_waypoints():
    """The refinement reads different features when the waypoints move: its gathered input
    depends on where they are, unlike the global query's."""
    fmap = torch.zeros(1, 1, 16, 16)
    fmap[0, 0, 4, 8] = 1.0  # one hot cell ahead of the ego
    cell_x = (RC.ego_row - (4 * 4 + 1.5)) * RC.resolution
    cell_y = (RC.size // 2 - (8 * 4 + 1.5)) * RC.resolution
    on = gather_local([fmap], torch.tensor([[[cell_x, cell_y]]]), RC)
    off = gather_local([fmap], torch.tensor([[[cell_x, cell_y + 12.0]]]), RC)
    assert on.item() == pytest.approx(1.0) and off.item() == 0.0


# ---------------------------------------------------------------- geometry targets
def test_geometry_targets_on_a_constructed_raster():
    r = np.zeros((1, len(CHANNELS), 64, 64), np.uint8)
    r[0, CHANNELS.index("road"), :, 24:40] = 1  # a 16-pixel (24 m) wide road
    r[0, CHANNELS.index("lane_lines"), :, 31] = 1
    r[0, CHANNELS.index("vehicles_t0"), 10:12, 30:32] = 1  # one car, one 2x2 cell (5, 15)
    t = method.geometry_targets(r, RC, distance_clip=12.0)
    assert t.shape == (1, len(method.GEOMETRY_MAPS), 32, 32)
    veh, closure, drv, lines, route, dist = t[0]
    assert veh[5, 15] == 1 and veh.sum() == 1 and closure.sum() == 0 and route.sum() == 0
    assert lines[:, 15].all() and lines.sum() == 32
    assert drv[:, 12:20].sum() == 32 * 8 - 1 and drv[:, :12].sum() == 0  # road minus the car
    assert dist[5, 15] == 0 and dist[:, :12].max() == 0  # obstacles and off-road: distance 0
    # along the road centre, far from the car: distance to the nearer road edge (8 px = 12 m), clipped to 1
    assert dist[25, 15] == pytest.approx(np.mean([min(k * 1.5, 12) / 12 for k in (7, 8)]), abs=0.05)
    assert 0 < dist[7, 15] < dist[25, 15]  # nearer the car, smaller
    # the loss: perfect logits give ~0, the mean BCE of 0.5-probabilities log 2 per map
    logits = torch.from_numpy(np.where(t[:, :5] > 0.5, 30.0, -30.0)).float()
    perfect = torch.cat([logits, torch.logit(torch.from_numpy(t[:, 5:]).clamp(1e-6, 1 - 1e-6))], 1)
    assert method.geometry_loss(perfect, torch.from_numpy(t))["geometry"].item() < 1e-5
    zero = method.geometry_loss(torch.zeros(1, 6, 32, 32), torch.from_numpy(t))
    assert zero["vehicles"].item() == pytest.approx(math.log(2), abs=1e-6)


# ---------------------------------------------------------------- HPD
def test_kmeans_anchors_recover_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + 0.1 * rng.normal(size=(50, 2)) for c in centres])[:, None, :]  # (150, T=1, 2)
    a = method.kmeans_anchors(x, 3, seed=0)
    assert sorted(map(tuple, np.round(a[:, 0]).astype(int).tolist())) == [(0, 0), (0, 10), (10, 0)]
    ids = method.nearest_anchor(x, a)
    assert len(set(ids[:50])) == len(set(ids[50:100])) == len(set(ids[100:])) == 1


def test_hpd_conditions_waypoints_on_the_intention():
    torch.manual_seed(0)
    anchors = torch.stack([torch.zeros(6, 2), torch.stack([torch.zeros(6), torch.linspace(0.5, 3.5, 6)], -1)])
    net = make_planner("hpd_lir", Dims(), 6, 0.5, RC, anchors=anchors, rounds=2)
    raster = (torch.rand(2, 8, 64, 64) > 0.9).float()
    ego = torch.tensor([[20.0, 0, 0, 0], [10.0, 0, 0, 0]])
    cmd = torch.tensor([0, 1])
    cv = torch.stack([ego[:, :1] * 0.5 * torch.arange(1, 7), torch.zeros(2, 6)], -1)
    for k in (0, 1):
        out = net(raster, ego, cmd, torch.tensor([k, k]))
        assert len(out["stages"]) == 3  # HPD's plan and two LIR rounds
        # zero-initialised residual and offsets: the plan is the chosen anchor on constant velocity
        assert torch.allclose(out["plan"], cv + anchors[k], atol=1e-6)
    free = net(raster, ego, cmd)
    assert torch.equal(free["intent"], free["intent_logits"].argmax(-1))
    glob = make_planner("global", Dims(), 6, 0.5, RC)
    assert torch.allclose(glob(raster, ego, cmd)["plan"], cv, atol=1e-6)


def test_imitation_losses_supervise_every_stage():
    expert = torch.zeros(2, 6, 2)
    out = {"stages": [torch.ones(2, 6, 2), torch.full((2, 6, 2), 0.5)], "intent_logits": torch.tensor([[2.0, 0.0]] * 2)}
    res = method.imitation_losses(out, expert, torch.tensor([0, 1]), intent_weight=0.5)
    assert res["l1"].item() == pytest.approx(1.0)  # the final stage: |0.5| + |0.5| per waypoint
    ce = np.mean([-math.log(math.exp(2) / (math.exp(2) + 1)), -math.log(1 / (math.exp(2) + 1))])
    assert res["loss"].item() == pytest.approx(2.0 + 1.0 + 0.5 * ce, abs=1e-5)
    assert res["intent_acc"].item() == pytest.approx(0.5)
