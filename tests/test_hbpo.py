"""HBPO: the budget-aware reward (Eq. 1-3), the hierarchical advantage (Alg. 1, Eq. 4-5), the budget
token as a response token, and the params schema."""

import math
from pathlib import Path

import pytest
import torch

from stages.hbpo.hbpo import (RewardSpec, budget_as_action, budget_reward, classic_reward, cosine_reward, f1,
                              f2, hbpo_advantages, subgroup_budgets)

ROOT = Path(__file__).resolve().parents[1]
PAPER = RewardSpec(l_max=4096)                       # beta 4, alpha 1/4096: the paper's constants
CODE = RewardSpec(l_max=4096, form="official_min", format_penalty=-1.0)


def smoke_params() -> str:
    text = (ROOT / "params" / "hbpo.yaml").read_text()
    assert text.startswith("#") and "\nscale: cpu " in text
    return text.replace("\nscale: cpu ", "\nscale: smoke", 1)


def test_f2_takes_the_spec_values_for_the_paper_budgets():
    # spec_B §1.2: f2 = 3.92 (512), 3.70 (1024), 2.83 (2048), 2.22 (2560) with L_max 4096
    assert [round(f2(b, PAPER), 2) for b in (512, 1024, 2048, 2560)] == [3.92, 3.70, 2.83, 2.22]
    assert math.isclose(f2(2048, PAPER), 4 * math.sqrt(0.5), rel_tol=1e-12)  # 4 cos(pi / 4)
    # our scaled substrate (L_max 128, budgets 1/8 .. 5/8 of it) gives exactly the same values
    ours = RewardSpec(l_max=128)
    assert [f2(b, ours) for b in (16, 32, 64, 80)] == pytest.approx([f2(b, PAPER) for b in (512, 1024, 2048, 2560)])


def test_f1_by_hand():
    # 4 cos(pi 2000 / 8192) - |2000 - 1024| / 4096 = 4 * 0.720048 - 0.238281
    assert f1(2000, 1024, PAPER) == pytest.approx(2.641729, abs=1e-6)
    assert f1(0, 512, PAPER) == pytest.approx(3.875, abs=1e-12)  # 4 - 512/4096
    assert f1(700, 700, PAPER) == pytest.approx(f2(700, PAPER))   # continuous at n = b


def test_paper_reward_piecewise_and_boundaries():
    b = 1024
    assert budget_reward(True, True, 800, b, PAPER) == pytest.approx(3.695518, abs=1e-6)   # n <= b: f2(b)
    assert budget_reward(True, True, 1, b, PAPER) == budget_reward(True, True, b, b, PAPER)  # flat inside b
    assert budget_reward(True, True, b, b, PAPER) == f2(b, PAPER)                        # n = b: still f2
    assert budget_reward(True, True, b + 1, b, PAPER) == f1(b + 1, b, PAPER) < f2(b, PAPER)  # just over: f1
    assert budget_reward(True, True, 2000, b, PAPER) == pytest.approx(2.641729, abs=1e-6)
    assert budget_reward(True, True, 4096, b, PAPER) == f1(4096, b, PAPER)              # n = L_max allowed
    assert budget_reward(True, True, 4097, b, PAPER) == 0.0                              # beyond L_max
    assert budget_reward(False, True, 800, b, PAPER) == 0.0                              # wrong
    assert budget_reward(False, False, 800, b, PAPER) == 0.0                             # malformed: paper 0
    # inter-budget ordering (paper §3.2): short answers favour small budgets, long ones large budgets
    short = [budget_reward(True, True, 300, bb, PAPER) for bb in (512, 1024, 2048, 2560)]
    long = [budget_reward(True, True, 3000, bb, PAPER) for bb in (512, 1024, 2048, 2560)]
    assert short == sorted(short, reverse=True) and long == sorted(long)
    assert long[0] == pytest.approx(1.024755, abs=1e-6) and long[-1] == pytest.approx(1.524755, abs=1e-6)


def test_official_reward_min_and_format_penalty():
    # min(f1, f2): below f2 for a very short answer under a small budget (spec_B §1.2: 3.875 < 3.923)
    assert budget_reward(True, True, 0, 512, CODE) == pytest.approx(3.875)
    assert budget_reward(True, True, 0, 512, PAPER) == pytest.approx(3.923141, abs=1e-6)
    # equal to the paper's for n > b, and never above f2
    for n in (513, 1000, 3000, 4096):
        assert budget_reward(True, True, n, 512, CODE) == budget_reward(True, True, n, 512, PAPER)
    for n in range(0, 4097, 97):
        assert budget_reward(True, True, n, 2048, CODE) <= f2(2048, CODE) + 1e-12
    assert budget_reward(False, False, 100, 512, CODE) == -1.0   # no </think> / no answer
    assert budget_reward(False, True, 100, 512, CODE) == 0.0     # wrong answer


def test_baseline_rewards():
    assert classic_reward(True, True, PAPER) == 1.0 and classic_reward(False, True, PAPER) == 0.0
    assert classic_reward(True, False, CODE) == -1.0
    assert cosine_reward(True, True, 0, PAPER) == pytest.approx(4.0)
    assert cosine_reward(True, True, 2048, PAPER) == pytest.approx(2.828427, abs=1e-6)
    assert cosine_reward(True, True, 4097, PAPER) == 0.0 and cosine_reward(False, True, 10, PAPER) == 0.0


def test_subgroup_layout():
    assert subgroup_budgets([24, 48, 96, 120], 8) == [24, 24, 48, 48, 96, 96, 120, 120]
    assert subgroup_budgets([72], 4) == [72] * 4
    with pytest.raises(ValueError):
        subgroup_budgets([24, 48, 96], 16)


def test_advantage_by_hand():
    budgets = [512, 512, 2560, 2560]
    R = torch.tensor([[f2(512, PAPER), 0.0, f2(2560, PAPER), f2(2560, PAPER)]], dtype=torch.float64)
    # mean 2.091926, unbiased std 1.608673; A^intra: (3.923141 + 0)/2 - 3.923141 = -1.961571 and 0
    inter = [1.138338, -1.300404, 0.081033, 0.081033]
    intra = [-1.961571, -1.961571, 0.0, 0.0]
    a1 = hbpo_advantages(R, budgets, PAPER)
    assert a1[0].tolist() == pytest.approx([i + j for i, j in zip(inter, intra)], abs=1e-5)
    a2 = hbpo_advantages(R, budgets, PAPER, intra_coef=2.0)   # the official code's double-added intra term
    assert a2[0].tolist() == pytest.approx([i + 2 * j for i, j in zip(inter, intra)], abs=1e-5)
    assert a2[0].tolist() == pytest.approx([-2.784803, -5.223545, 0.081033, 0.081033], abs=1e-5)


def test_advantage_properties():
    gen = torch.Generator().manual_seed(0)
    budgets = subgroup_budgets([512, 1024, 2048, 2560], 16)
    n = torch.randint(0, 4096, (32, 16), generator=gen)
    ok = torch.rand(32, 16, generator=gen) < 0.6
    R = torch.tensor([[budget_reward(bool(ok[g, j]), True, int(n[g, j]), budgets[j], PAPER) for j in range(16)]
                      for g in range(32)], dtype=torch.float64)
    inter = hbpo_advantages(R, budgets, PAPER, intra_coef=0.0)
    assert inter.sum(1).abs().max() < 1e-9                    # A^inter sums to 0 over the query's n samples
    intra = hbpo_advantages(R, budgets, PAPER) - inter
    assert (intra <= 1e-12).all()                             # paper form: every R <= f2(b), so A^intra <= 0
    for j in range(16):                                       # constant within a subgroup
        assert torch.allclose(intra[:, j], intra[:, 4 * (j // 4)])
    same = torch.full((2, 16), 1.5, dtype=torch.float64)      # all-equal rewards: A^inter = 0, no NaN
    a = hbpo_advantages(same, budgets, PAPER)
    assert torch.isfinite(a).all() and torch.allclose(a - (1.5 - torch.tensor([f2(b, PAPER) for b in budgets], dtype=torch.float64)),
                                                      torch.zeros_like(a))
    # one budget (the single-budget baseline): A^intra is one number per query
    one = hbpo_advantages(R, [1536] * 16, PAPER)
    assert torch.allclose((one - inter)[:, :1].expand(-1, 16), one - inter)


def test_budget_token_becomes_the_first_response_token():
    from hrlzoo.lm.sampler import sample, token_logprobs
    from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT

    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=12, n_layer=1, n_head=2, d_model=16, max_seq_len=32))
    prompts = [[1, 5, 9], [1, 6, 6, 10]]  # the last token of each prompt plays the budget token
    roll = sample(model, prompts, max_new_tokens=5, pad_id=0, stop_ids=[2],
                  generator=torch.Generator().manual_seed(0))
    moved = budget_as_action(roll, model)
    assert moved.prompt_ids.tolist() == [[0, 1, 5], [1, 6, 6]]
    assert moved.tokens[:, 0].tolist() == [9, 10] and moved.mask[:, 0].all()
    assert torch.equal(moved.tokens[:, 1:], roll.tokens) and torch.equal(moved.lengths, roll.lengths + 1)
    # the same full sequences, and the moved token's log-prob is the policy's, as if it had sampled it
    assert torch.equal(torch.cat(moved.sequences(), 1), torch.cat(roll.sequences(), 1))
    ids, mask = roll.sequences()
    with torch.no_grad():
        lp = token_logprobs(model, ids, mask, start=roll.prompt_ids.shape[1] - 1)
    assert torch.allclose(moved.logprobs, lp * moved.mask, atol=1e-5)


def test_committed_params_are_valid():
    from hrlzoo.pipeline.params import load_params
    from stages.hbpo.params import HBPOParams, all_budgets

    p = load_params("hbpo", HBPOParams, root=ROOT)
    assert set(p.sizes) == {"smoke", "cpu", "paper"}
    assert p.sizes["paper"].rl.steps == 629 and p.sizes["paper"].rl.prompts == 64   # paper §4
    assert p.sizes["paper"].rl.group_size == 16 and p.sizes["paper"].rl.minibatches == 4
    assert all_budgets(p) == [16, 32, 48, 64, 80]
    hbpo_b = p.methods["hbpo"].budgets
    assert [b / p.reward.l_max for b in hbpo_b] == [512 / 4096, 1024 / 4096, 2048 / 4096, 2560 / 4096]
    assert p.methods["single"].budgets == [sum(hbpo_b) // len(hbpo_b)]               # the same mean


@pytest.mark.parametrize("old,new,expected", [
    ("  form: paper ", "  form: bogus ", r"reward\.form = 'bogus': expected one of 'paper', 'official_min'"),
    ("  eps_low: 0.2 ", "  eps_low: 1.5 ", r"rl\.eps_low = 1\.5: expected a number < 1"),
    ("  single: {reward: budget, budgets: [48]}", "  single: {reward: budget, budgets: []}",
     r"methods\.single: reward 'budget' needs budgets"),
    ("hbpo: {reward: budget, budgets: [16, 32, 64, 80]}", "hbpo: {reward: budget, budgets: [16, 32, 64, 400]}",
     r"methods\.hbpo\.budgets: expected budgets <= reward\.l_max"),
    ("levels: [1, 2, 4, 6]", "levels: [1, 4, 2, 6]", r"levels: expected 4 increasing chain lengths"),
    ("  max_checks: 3", "  max_checks: 0", r"sft\.max_checks = 0: expected a number >= 1"),
    ("  style_mix: {verbose: 0.6, standard: 0.3, direct: 0.1}", "  style_mix: {verbose: 0.7, standard: 0.3, direct: 0.1}",
     r"sft\.style_mix: expected weights that sum to 1"),
])
def test_bad_params_exit_2_before_writing(tmp_path, monkeypatch, capsys, old, new, expected):
    import re

    from stages.hbpo.sft import main

    (tmp_path / "params").mkdir()
    text = smoke_params()
    assert old in text, old
    (tmp_path / "params" / "hbpo.yaml").write_text(text.replace(old, new, 1))
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(expected, err), err
    assert not (tmp_path / "data").exists()


def test_unknown_method_exits_2(tmp_path, monkeypatch, capsys):
    from stages.hbpo.rl import main

    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "hbpo.yaml").write_text(smoke_params())
    monkeypatch.chdir(tmp_path)
    assert main(["l1max"]) == 2
    assert "method 'l1max': expected one of base, hbpo, single, classic, cosine" in capsys.readouterr().err
