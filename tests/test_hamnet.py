"""HAMNet (stages/hamnet/, hrlzoo/envs/pushing.py): the pushing simulator's physics and splits,
the contact labels and AUROC, the modular network's mixing and gating, the parameter-matched
baseline, PPO's HAMNet options, and the stages at smoke scale (same bytes twice, every claim in
the report, frames drawn)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hrlzoo.envs.pushing import PushConfig, PushEnv, World, generate_layout, obs_layout

ROOT = Path(__file__).resolve().parents[1]


def test_batched_convention_and_gymnasium_faces():
    from hrlzoo.envs.batched import check_batched_env

    check_batched_env(lambda num_envs, autoreset=True: PushEnv(num_envs, PushConfig(max_steps=12), autoreset=autoreset),
                      num_envs=3, steps=30)


def test_splits_hold_out_combinations_and_shapes():
    cfg = PushConfig()
    seen = {s: set() for s in ("train", "heldout_env", "heldout_shape")}
    for split in seen:
        for j in range(60):
            lay = generate_layout(cfg, split, np.random.default_rng(j))
            seen[split].add((lay.geometry, lay.floor, lay.shape))
    held = set(cfg.heldout_envs)
    assert all((g, f) not in held and s not in cfg.heldout_shapes for g, f, s in seen["train"])
    assert all((g, f) in held and s not in cfg.heldout_shapes for g, f, s in seen["heldout_env"])
    assert all((g, f) not in held and s in cfg.heldout_shapes for g, f, s in seen["heldout_shape"])
    # every geometry and floor of a held-out pair is seen in training, only not together
    assert {g for g, _, _ in seen["train"]} >= {g for g, _ in held}
    assert {f for _, f, _ in seen["train"]} >= {f for _, f in held}


def _push_world(geometry: str, seed: int = 0) -> World:
    cfg = PushConfig()
    for j in range(200):
        lay = generate_layout(cfg, "train", np.random.default_rng([seed, j]))
        if lay.geometry == geometry:
            return World(cfg, lay)
    raise AssertionError(f"no {geometry} layout drawn")


def test_the_hand_pushes_the_object_and_walls_stop_it():
    cfg = PushConfig()
    w = _push_world("open")
    start = np.array(w.state()[:2])
    # drive the hand through the object's centre and beyond
    for _ in range(60):
        st = w.state()
        d = np.array(st[:2]) - np.array(st[6:8])
        w.step(cfg.v_max * d / (np.linalg.norm(d) + 1e-9), cfg.substeps, cfg.dt)
    assert np.linalg.norm(np.array(w.state()[:2]) - start) > 0.05
    # push the object into the arena wall (x = +arena): its centre never crosses it
    w = _push_world("open", seed=1)
    for _ in range(200):
        st = w.state()
        target = np.array(st[:2]) - np.array([0.05, 0.0])
        d = target - np.array(st[6:8])
        v = d / (np.linalg.norm(d) + 1e-9) if np.linalg.norm(d) > 0.01 else np.array([1.0, 0.0])
        w.step(cfg.v_max * v, cfg.substeps, cfg.dt)
    assert w.state()[0] < cfg.arena


def test_floor_friction_slows_the_object():
    """The same shove decays faster on a high-friction floor (the pivot/gear friction joints)."""
    cfg = PushConfig()
    travelled = []
    for mu in (0.1, 1.0):
        lay = generate_layout(cfg, "train", np.random.default_rng(3))
        lay.mu, lay.patch = mu, None
        w = World(cfg, lay)
        w.obj.velocity = (0.3, 0.0)
        x0 = w.state()[0]
        for _ in range(5):
            w.step(np.zeros(2), cfg.substeps, cfg.dt)
        travelled.append(w.state()[0] - x0)
    assert travelled[0] > travelled[1] > 0


def test_success_terminates_with_the_bonus():
    env = PushEnv(1, PushConfig(pos_tol=10.0, ang_tol=10.0))   # every pose is a success
    env.reset(seed=0)
    _, r, te, tr, _ = env.step(torch.zeros(1, 2))
    assert bool(te[0]) and float(r[0]) > 0.9


def test_contact_labels_and_auroc():
    from stages.hamnet.contact import auroc, contact_sample, patch_labels

    cfg = PushConfig()
    hits = 0
    for j in range(40):
        obj, env, hand, y_obj, y_env = contact_sample(cfg, "train", np.random.default_rng(j), 1.0, 0.0, 0.005)
        # a labelled point is within the hand radius + eps of the hand (observation units: cloud_scale)
        d = np.linalg.norm(obj - hand[:2], axis=1) * cfg.cloud_scale
        assert np.all(d[y_obj] < cfg.pusher_radius + 0.005) and np.all(d[~y_obj] >= cfg.pusher_radius + 0.005)
        hits += bool(y_obj.any())
    assert hits > 20   # the hand is placed on the surface
    assert patch_labels(np.array([[0, 0, 1, 0, 0, 0]], bool), 3).tolist() == [[True, False]]
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert math.isnan(auroc(np.array([0.1, 0.2]), np.array([1, 1])))


def _inputs(S=2, encoded=False):
    from stages.hamnet import nets

    L = obs_layout(PushConfig())
    return nets.Inputs(S, L, {"patch": 8, "dim": 16, "layers": 1, "heads": 2}, 16, 2, (16,), encoded=encoded)


def test_modular_layer_mixes_module_weights_and_gates_units():
    """With the modulation forced to module m and unit gates g, the base network is the plain
    MLP of module m's weights with its hidden pre-activations scaled by g (GateModLinear)."""
    from stages.hamnet import nets

    S, M = 2, 3
    net = nets.HAMNet(_inputs(S), S, 2, (8, 8), M, (16,))
    x = torch.randn(S, 5, net.inputs.base_dim)
    P = net.num_param
    m = 1
    p = torch.zeros(S, 5, P, M)
    p[..., m] = 1.0
    gates = [torch.full((S, 5, t), 1.5) for t in net.targets]
    got = net._base(x, p, gates, range(0, 3), 0)
    h = x
    for i in range(3):
        W, b = net.W[i][:, m], net.b[i][:, m]                    # [S, out, in], [S, out]
        y = torch.einsum("sbj,sij->sbi", h, W)
        if i < 2:
            h = torch.tanh(torch.nn.functional.layer_norm(1.5 * y + 1.5 * b[:, None], (y.shape[-1],)))
        else:
            h = y + b[:, None]
    torch.testing.assert_close(got, h)
    # a convex mixture of modules: equal weights give the mean weights' layer (first layer, gates 1)
    p = torch.full((S, 5, P, M), 1.0 / M)
    ones = [torch.ones(S, 5, t) for t in net.targets]
    first = net._base(x, p, ones, range(0, 1), 0)
    W, b = net.W[0].mean(1), net.b[0].mean(1)
    torch.testing.assert_close(first, torch.einsum("sbj,sij->sbi", x, W) + b[:, None])


def test_members_are_independent_and_gates_start_near_one():
    from stages.hamnet import nets

    S = 2
    net = nets.HAMNet(_inputs(S), S, 2, (8, 8), 4, (16,))
    obs = torch.randn(S, 3, PushEnv(1).single_observation_space.shape[0])
    a, v = net(obs)
    obs2 = obs.clone()
    obs2[1] += 1.0
    a2, v2 = net(obs2)
    torch.testing.assert_close(a[0], a2[0])
    torch.testing.assert_close(v[0], v2[0])
    assert not torch.allclose(a[1], a2[1])
    ctx, _ = net.inputs(obs)
    p, gates = net.modulation(ctx)
    torch.testing.assert_close(p.sum(-1), torch.ones_like(p.sum(-1)))
    assert all(float((g - 1).abs().max().detach()) < 0.5 for g in gates)


def test_monolithic_matches_hamnet_parameter_count():
    from stages.hamnet import nets

    S = 2
    ham = nets.HAMNet(_inputs(S), S, 2, (32, 32), 8, (64, 64))
    inp = _inputs(S)
    target = nets.count(ham, S) - nets.count(ham.inputs, S)
    w = nets.monolithic_width(inp.ctx_dim + inp.base_dim, 2, 2, target)
    mono = nets.Monolithic(inp, S, 2, [w, w])
    assert abs(nets.count(mono, S) - nets.count(ham, S)) / nets.count(ham, S) < 0.01


def test_ppo_kl_adaptive_seeds_train_as_alone():
    """HAMNet's KL-adaptive lr and early stopping are per seed: seed 3 trained beside seed 7
    ends with the same weights and lr scale as seed 3 alone."""
    from hrlzoo.algos.ppo import PPOConfig, train
    from hrlzoo.envs.pendulum import TorchPendulum

    cfg = PPOConfig(num_envs=2, num_steps=32, total_timesteps=192, minibatch_size=64, update_epochs=4,
                    kl_target=0.002, pg_coef=0.5, vf_coef=2.0, bound_coef=0.02, clip_coef=0.3, hidden=(16,),
                    normalize_obs=True, normalize_obs_upto=2)
    alone = train(cfg, TorchPendulum(num_envs=2), [3])
    both = train(cfg, TorchPendulum(num_envs=4), [3, 7])
    for pa, pb in zip(alone.agent.parameters(), both.agent.parameters()):
        torch.testing.assert_close(pa[0], pb[0], rtol=1e-4, atol=1e-5)
    assert float(alone.agent.lr_scale[0]) == float(both.agent.lr_scale[0])
    assert float(alone.agent.lr_scale[0]) != 1.0   # the schedule moved
    # the observation dims past normalize_obs_upto pass raw
    o = torch.randn(2, 3)
    n = alone.normalizer.obs(o)
    torch.testing.assert_close(n[0, :, 2], o[:, 2])


def test_dvc_foreach_matches_methods():
    import yaml

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    methods = yaml.safe_load((ROOT / "params/hamnet.yaml").read_text())["methods"]
    assert dvc["hamnet_train"]["foreach"] == methods


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    import yaml

    from conftest import smoke_train_and_report, smoke_workdir
    from stages.hamnet import contact, report, train

    tmp = tmp_path_factory.mktemp("hamnet")
    with smoke_workdir(tmp, "hamnet") as text:
        assert contact.main([]) == 0
        first, again = smoke_train_and_report("hamnet", yaml.safe_load(text)["methods"], train, report)
    return tmp, first, again


def test_stages_deterministic_and_report_complete(smoke_run):
    import yaml

    tmp, first, again = smoke_run
    assert first == again
    enc = json.loads((tmp / "data/hamnet/encoder/metrics.json").read_text())
    assert len(enc["train"]["auroc_hand"]) == 5
    declared = yaml.safe_load((ROOT / "stages/hamnet/claims.yaml").read_text())
    metrics = json.loads((tmp / "reports/hamnet/metrics.json").read_text())
    assert set(metrics["claims"]) == {c["id"] for c in declared["claims"]}
    assert set(metrics["gates"]) == {c["id"] for c in declared["gates"]}
    text = (tmp / "reports/hamnet/report.md").read_text()
    assert "Deviations" in text and "Our reading" in text and all(c["id"] in text for c in declared["claims"])
    figs = tmp / "reports/hamnet/figures"
    for f in ("train_success.png", "success_by_split.png", "module_usage.png"):
        assert (figs / f).stat().st_size > 1000
    assert len(list(figs.glob("episode_hamnet_*.png"))) == 3
    usage = np.load(tmp / "data/hamnet/runs/hamnet/usage.npz")
    assert usage["probs"].shape[1:] == (2 * 3 * 2, 8)   # (actor, critic) x 3 layers x (W, b); M = 8
    np.testing.assert_allclose(usage["probs"].sum(-1), 1.0, rtol=1e-5)
