"""hrlzoo.algos.grpo: group advantages, dynamic sampling, clip-higher, aggregation, a tiny run."""

import copy
import math

import torch

from hrlzoo.algos.grpo import (GroupBatch, GRPOConfig, GRPOTrainer, Sample, aggregate,
                               clipped_token_loss, drop_uniform_groups, group_advantages, k3_kl,
                               policy_loss, uniform_groups)
from hrlzoo.lm.sampler import Rollout
from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT


def test_advantages_are_normalised_within_each_group_only():
    r = torch.tensor([[0., 1., 1., 0.], [10., 10., 10., 10.], [1., 2., 3., 4.]])
    a = group_advantages(r)
    assert torch.allclose(a.mean(1), torch.zeros(3), atol=1e-6)
    assert torch.allclose(a[[0, 2]].std(1), torch.ones(2), atol=1e-4)  # unbiased std, as verl
    assert (a[1] == 0).all()                                            # all equal: no signal
    s = math.sqrt(1 / 3)  # std of [0, 1, 1, 0]
    assert torch.allclose(a[0], torch.tensor([-0.5, 0.5, 0.5, -0.5]) / (s + 1e-6))
    # shifting one group's rewards does not move another group's advantages
    r2 = r.clone()
    r2[2] += 100
    assert torch.allclose(group_advantages(r2), a)
    assert torch.allclose(group_advantages(r, std_normalize=False)[2], torch.tensor([-1.5, -.5, .5, 1.5]))


def _batch(rewards: torch.Tensor) -> GroupBatch:
    n, G = rewards.shape
    B = n * G
    roll = Rollout(torch.arange(B)[:, None], torch.ones(B, 1, dtype=torch.bool),
                   torch.arange(B)[:, None].repeat(1, 3), torch.ones(B, 3, dtype=torch.bool),
                   torch.zeros(B, 3), torch.ones(B, dtype=torch.bool))
    samples = [Sample(f"q{r // G}", r % G, "", 3, True) for r in range(B)]
    return GroupBatch([f"q{g}" for g in range(n)], roll, rewards, samples, G)


def test_dynamic_sampling_drops_all_equal_groups():
    r = torch.tensor([[0., 0., 0.], [0., 1., 0.], [1., 1., 1.], [.5, .5, .5], [1., 0., 1.]])
    assert uniform_groups(r).tolist() == [True, False, True, True, False]
    kept = drop_uniform_groups(_batch(r))
    assert kept.items == ["q1", "q4"]
    assert torch.equal(kept.rewards, r[[1, 4]])
    assert kept.rollout.prompt_ids.squeeze(1).tolist() == [3, 4, 5, 12, 13, 14]  # rows follow
    assert [s.item for s in kept.samples] == ["q1"] * 3 + ["q4"] * 3
    assert drop_uniform_groups(_batch(torch.ones(2, 4))).n_groups == 0


def test_clip_higher_by_hand():
    ratio = torch.tensor([1.5, 1.25, 0.5, 0.5, 1.5, 0.7])
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    logp = torch.log(ratio).requires_grad_()
    loss, clipped = clipped_token_loss(logp, torch.zeros(6), adv, eps_low=0.2, eps_high=0.28)
    # -min(rho A, clip(rho, 0.8, 1.28) A):
    #   rho 1.5,  A+  -> clipped at 1.28         -> -1.28
    #   rho 1.25, A+  -> inside [0.8, 1.28]      -> -1.25 (a symmetric 0.2 clip would give -1.2)
    #   rho 0.5,  A+  -> min(0.5, 0.8) = 0.5     -> -0.5  (no clip below for A > 0)
    #   rho 0.5,  A-  -> min(-0.5, -0.8) = -0.8  ->  0.8  (clipped at 1 - eps_low)
    #   rho 1.5,  A-  -> min(-1.5, -1.28) = -1.5 ->  1.5  (no clip above for A < 0)
    #   rho 0.7,  A-  -> min(-0.7, -0.8) = -0.8  ->  0.8
    assert torch.allclose(loss, torch.tensor([-1.28, -1.25, -0.5, 0.8, 1.5, 0.8]))
    assert clipped.tolist() == [True, False, False, True, False, True]
    loss.sum().backward()  # clipped tokens carry no gradient; the others d/dlogp = -A * rho
    assert torch.allclose(logp.grad, torch.tensor([0.0, -1.25, -0.5, 0.0, 1.5, 0.0]))
    sym, _ = clipped_token_loss(torch.log(ratio), torch.zeros(6), adv, eps_low=0.2, eps_high=0.2)
    assert math.isclose(sym[1].item(), -1.2, rel_tol=1e-6)
    dual, _ = clipped_token_loss(torch.log(torch.tensor([5.0])), torch.zeros(1), torch.tensor([-1.0]),
                                 eps_low=0.2, eps_high=0.28, dual_clip=3.0)
    assert math.isclose(dual.item(), 3.0, rel_tol=1e-6)  # min(5, 3): dual clip for A < 0


def test_aggregations():
    tok = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, True], [True, False, False, False]])
    assert math.isclose(aggregate(tok, mask, "token-mean").item(), 8 / 5, rel_tol=1e-6)  # DAPO
    assert math.isclose(aggregate(tok, mask, "seq-mean-token-mean").item(), 2.5, rel_tol=1e-6)  # GRPO
    logp, ref = torch.log(torch.tensor([0.5, 0.2])), torch.log(torch.tensor([0.25, 0.2]))
    assert torch.allclose(k3_kl(logp, ref), torch.tensor([0.5 - math.log(0.5) - 1, 0.0]))
    cfg = GRPOConfig.grpo(kl_coef=0.1)
    loss, stats = policy_loss(torch.zeros(2, 4), torch.zeros(2, 4), torch.tensor([1.0, -2.0]), mask, cfg,
                              ref_logp=torch.zeros(2, 4))
    assert math.isclose(loss.item(), (-1.0 + 2.0) / 2, rel_tol=1e-6) and stats["kl"] == 0.0


class _Tok:
    pad_id = 0

    def decode(self, ids):
        return " ".join(map(str, ids))


def _run(cfg: GRPOConfig, steps: int) -> list[float]:
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=12, n_layer=1, n_head=2, d_model=32, max_seq_len=16))
    trainer = GRPOTrainer(model, cfg, prompt_fn=lambda item, j: [1, item], tok=_Tok(), stop_ids=[2],
                          reward_fn=lambda s: s.text.split().count("5") / 6, seed=0)
    return [trainer.step([3, 4, 6, 7])["reward_mean"] for _ in range(steps)]


def test_grpo_and_dapo_learn_a_trivial_reward():
    # reward: the fraction of the 6 generated tokens that are "5" (chance ~ 1/12)
    for cfg in (GRPOConfig.grpo(group_size=8, max_new_tokens=6, lr=3e-3, epochs=2, minibatches=2),
                GRPOConfig.dapo(group_size=8, max_new_tokens=6, lr=3e-3, epochs=2, minibatches=2)):
        rewards = _run(cfg, 15)
        assert sum(rewards[:3]) / 3 < 0.2, rewards
        assert sum(rewards[-3:]) / 3 > 0.6, rewards


def test_zero_learning_rate_keeps_the_policy():
    cfg = GRPOConfig.dapo(group_size=4, max_new_tokens=6, lr=0.0)
    rewards = _run(cfg, 4)
    assert max(rewards) < 0.3


def test_dynamic_sampling_refills_from_more_prompts():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=12, n_layer=1, n_head=2, d_model=32, max_seq_len=16))
    asked = []

    def refill(k):
        asked.append(k)
        return [8] * k

    # prompts 3 and 4 always score 1 (dropped); 8 gets a reward that varies with the sample
    cfg = GRPOConfig.dapo(group_size=4, max_new_tokens=4, max_refill_rounds=2, lr=0.0)
    trainer = GRPOTrainer(model, cfg, prompt_fn=lambda item, j: [1, item], tok=_Tok(), stop_ids=[],
                          reward_fn=lambda s: 1.0 if s.item != 8 else float(s.index % 2), seed=0)
    stats = trainer.step([3, 4], refill=refill)
    assert asked == [2]
    assert stats["groups_kept"] == 2 and stats["groups_sampled"] == 4
    assert trainer.last_batch.n_groups == 4


def test_microbatches_give_the_minibatch_gradient():
    from hrlzoo.algos.grpo import ppo_update, rollout_groups

    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=12, n_layer=1, n_head=2, d_model=32, max_seq_len=24))
    for agg in ("token-mean", "seq-mean-token-mean"):
        cfg = GRPOConfig(group_size=4, max_new_tokens=8, loss_agg=agg, microbatch_rows=0)
        batch = rollout_groups(model, [3, 4, 6], cfg, prompt_fn=lambda item, j: [1] * (1 + j % 3) + [item],
                               reward_fn=lambda s: float(s.n_tokens), tok=_Tok(), pad_id=0, stop_ids=[2, 5],
                               generator=torch.Generator().manual_seed(0))
        assert len(set(batch.rollout.lengths.tolist())) > 2  # rows of different lengths
        adv = group_advantages(batch.rewards)
        grads = []
        for rows in (0, 5):
            m = copy.deepcopy(model)
            opt = torch.optim.SGD(m.parameters(), lr=1.0)
            cfg.microbatch_rows = rows
            stats = ppo_update(m, opt, batch, adv, cfg)
            grads.append(torch.cat([(p - q).flatten() for p, q in zip(model.parameters(), m.parameters())]))
            assert math.isfinite(stats["loss"])
        assert grads[0].abs().max() > 1e-4
        assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-4)


def test_shared_prompts_give_the_same_update():
    """SharedPrompts (each distinct prompt run once, its gradient carried back after the
    microbatches) moves the parameters exactly as running every row's prompt again."""
    from hrlzoo.algos.grpo import SharedPrompts, ppo_update, rollout_groups

    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=12, n_layer=2, n_head=2, d_model=32, max_seq_len=24))
    for agg, temp in (("token-mean", 1.0), ("seq-mean-token-mean", 0.7)):
        cfg = GRPOConfig(group_size=4, max_new_tokens=8, loss_agg=agg, microbatch_rows=5, minibatches=2,
                         temperature=temp)
        batch = rollout_groups(model, [3, 4, 6], cfg, prompt_fn=lambda item, j: [1] * (1 + j % 2) + [item],
                               reward_fn=lambda s: float(s.n_tokens), tok=_Tok(), pad_id=0, stop_ids=[2, 5],
                               generator=torch.Generator().manual_seed(0))
        shared = SharedPrompts(model, batch.rollout, temp)
        assert shared.n_prompts == 6  # 12 rows, 3 items x 2 prompt lengths
        adv = group_advantages(batch.rewards)
        moved = []
        for share in (False, True):
            m = copy.deepcopy(model)
            opt = torch.optim.SGD(m.parameters(), lr=1.0)
            cfg.share_prompts = share
            ppo_update(m, opt, batch, adv, cfg, generator=torch.Generator().manual_seed(1))
            moved.append(torch.cat([(p - q).flatten() for p, q in zip(model.parameters(), m.parameters())]))
        assert moved[0].abs().max() > 1e-4
        assert torch.allclose(moved[0], moved[1], atol=1e-6, rtol=1e-4)


def test_paper_hooks_prompt_per_sample_and_own_advantage():
    """HBPO's shape: sample j of a group gets budget j // (G / 4) in its prompt, and the paper
    supplies its own advantage; here a zero advantage must leave the policy unchanged."""
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=12, n_layer=1, n_head=2, d_model=32, max_seq_len=16))
    before = copy.deepcopy(model.state_dict())
    seen, adv_calls = [], []

    def prompt_fn(item, j):
        seen.append((item, j))
        return [1, item, 8 + j // 2]  # four "budget tokens" 8..11 for G = 8

    def advantage_fn(rewards, batch):
        adv_calls.append((tuple(rewards.shape), [s.index for s in batch.samples[:8]]))
        return torch.zeros_like(rewards)

    trainer = GRPOTrainer(model, GRPOConfig.dapo(group_size=8, max_new_tokens=5, lr=1e-2), prompt_fn=prompt_fn,
                          reward_fn=lambda s: float(s.index), tok=_Tok(), stop_ids=[2],
                          advantage_fn=advantage_fn, seed=0)
    trainer.step([3, 4])
    assert seen == [(3, j) for j in range(8)] + [(4, j) for j in range(8)]
    assert adv_calls == [((2, 8), list(range(8)))]
    assert (trainer.last_batch.rollout.prompt_ids[:, -1] == torch.tensor([8, 8, 9, 9, 10, 10, 11, 11] * 2)).all()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_overlong_penalty_and_determinism():
    from hrlzoo.algos.grpo import overlong_penalty

    # L_max = 100, L_cache = 20: free up to 80, linear to -1 at 100, -1 beyond
    assert [overlong_penalty(n, 100, 20) for n in (10, 80, 90, 100, 101)] == [0.0, 0.0, -0.5, -1.0, -1.0]
    cfg = GRPOConfig.dapo(group_size=4, max_new_tokens=6, lr=3e-3)
    assert _run(cfg, 3) == _run(cfg, 3)  # same seeds, same numbers


def test_a_non_finite_loss_stops_before_the_update():
    import pytest

    from hrlzoo.pipeline.stage import NonFiniteError

    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=12, n_layer=1, n_head=2, d_model=32, max_seq_len=16))
    before = copy.deepcopy(model.state_dict())
    trainer = GRPOTrainer(model, GRPOConfig.grpo(group_size=4, max_new_tokens=4), prompt_fn=lambda i, j: [1, i],
                          reward_fn=lambda s: float(s.index), tok=_Tok(), stop_ids=[], seed=0)
    nan = next(model.parameters()).sum() * float("nan")
    with pytest.raises(NonFiniteError, match="at step 0"):
        trainer.step([3], extra_loss=lambda: nan * 1.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
