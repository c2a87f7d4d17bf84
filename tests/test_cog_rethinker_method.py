"""Cog-Rethinker's core (stages/cog_rethinker/method.py): the DAPO + lambda SFT loss by hand, the
routing of problems through the rollout hierarchy, BM25 retrieval, the rewrite, determinism."""

import copy
import math

import numpy as np
import pytest
import torch

from hrlzoo.algos.grpo import GroupBatch, GRPOConfig, Sample, group_advantages, ppo_update, rollout_groups
from hrlzoo.lm.sampler import Rollout, completion_logprobs, left_pad
from hrlzoo.lm.sft import collate_pairs
from hrlzoo.lm.tasks import (Problem, corrupt_solution, decomposition_solution, direct_prompt, mixed_level,
                             make_problems, solution, verify)
from hrlzoo.lm.tokenizer import CharTokenizer
from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT
from stages.cog_rethinker.method import (CogRethinker, DemoBuffer, cog_objective, make_config, sft_loss,
                                         splice_rescued)
from stages.cog_rethinker.params import MethodParams

TOK = CharTokenizer(budgets=())
COG = MethodParams("dapo", True, True, True, False)


def P(expr_ops, nums, level=None):
    return Problem(tuple(nums), tuple(expr_ops), len(expr_ops) if level is None else level, "ops")


def tiny_model(seed=0, max_seq_len=320):
    torch.manual_seed(seed)
    return TinyGPT(GPTConfig(vocab_size=TOK.vocab_size, n_layer=1, n_head=2, d_model=32, max_seq_len=max_seq_len))


# ------------------------------------------------------------------------------ the loss
def test_dapo_plus_sft_loss_by_hand():
    cfg = GRPOConfig.dapo()
    # two direct rollouts: 2 and 1 tokens; ratios 1.5 (A = +1, clipped at 1.28) and 0.5, 1.0 (A = -1)
    logp = torch.log(torch.tensor([[1.5, 1.0], [0.5, 1.0]]))
    mask = torch.tensor([[True, True], [True, False]])
    adv = torch.tensor([1.0, -1.0])
    # token losses -min(rho A, clip(rho) A): [-1.28, -1.0] and [0.8]; token-mean over 3 tokens
    pg = (-1.28 - 1.0 + 0.8) / 3
    # SFT: two targets of 2 and 3 tokens with known log-probs; per-sequence mean, then mean
    sft_logp = torch.log(torch.tensor([[0.5, 0.25, 1.0], [0.5, 0.5, 0.125]]))
    sft_mask = torch.tensor([[True, True, False], [True, True, True]])
    l_sft = ((math.log(2) + math.log(4)) / 2 + (math.log(2) + math.log(2) + math.log(8)) / 3) / 2
    for lam in (0.0, 0.5, 1.0):
        got = cog_objective(logp, torch.zeros(2, 2), adv, mask, cfg, sft_logp, sft_mask, lam)
        assert math.isclose(got.item(), pg + lam * l_sft, rel_tol=1e-6), (lam, got.item())


def test_training_path_gives_the_objective_gradient():
    """ppo_update with extra_loss = lambda * sft_loss takes the gradient of cog_objective."""
    model = tiny_model()
    cfg = GRPOConfig.dapo(group_size=4, max_new_tokens=6, microbatch_rows=3, lr=1.0, grad_clip=0.0)
    probs = make_problems(mixed_level(2, 1), 2, seed=0, level=2)
    batch = rollout_groups(model, probs, cfg, prompt_fn=lambda q, j: TOK.encode(direct_prompt(q), bos=True),
                           reward_fn=lambda s: float(s.index % 2), tok=TOK, pad_id=TOK.pad_id, stop_ids=[TOK.eos_id],
                           generator=torch.Generator().manual_seed(0))
    adv = group_advantages(batch.rewards)
    pairs = [(TOK.encode(direct_prompt(q), bos=True), TOK.encode(solution(q), eos=True)) for q in probs]
    lam = 0.7

    m1 = copy.deepcopy(model)
    opt = torch.optim.SGD(m1.parameters(), lr=1.0)
    ppo_update(m1, opt, batch, adv, cfg, extra_loss=lambda: lam * sft_loss(m1, pairs, TOK.pad_id))
    step = {n: (p0 - p1).detach() for (n, p0), (_, p1) in zip(model.named_parameters(), m1.named_parameters())}

    m2 = copy.deepcopy(model)
    logp = completion_logprobs(m2, batch.rollout)
    ids, lmask = collate_pairs(pairs, TOK.pad_id)
    sft_lp = torch.log_softmax(m2(ids[:, :-1]).float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    loss = cog_objective(logp, batch.rollout.logprobs, adv.reshape(-1), batch.rollout.mask, cfg, sft_lp, lmask, lam)
    grads = torch.autograd.grad(loss, list(m2.parameters()))
    for (n, _), g in zip(m2.named_parameters(), grads):
        assert torch.allclose(step[n], g, atol=1e-5), n


# ------------------------------------------------------------------------------ retrieval
def test_bm25_retrieves_demos_of_the_same_shape_and_the_buffer_grows():
    from collections import Counter

    from hrlzoo.lm.tasks import keywords

    pool = [q for k in range(2, 8) for q in make_problems(mixed_level(k, 1), 15, seed=k, level=k)]
    buf = DemoBuffer(pool)
    assert len(buf) == len(pool) and buf.demos[0] == "Q:" + pool[0].expr + " " + \
        decomposition_solution(pool[0]).replace("</think>", "")
    queries = [q for k in range(2, 8) for q in make_problems(mixed_level(k, 1), 10, seed=100 + k, level=k)]
    same_size, overlap_top, overlap_all = 0, 0.0, 0.0
    for q in queries:
        (demo,) = buf.retrieve(q, 1)
        top = pool[buf.demos.index(demo)]
        same_size += len(top.operands) == len(q.operands)
        kw = Counter(keywords(q))
        overlap_top += sum((kw & Counter(keywords(top))).values())
        overlap_all += np.mean([sum((kw & Counter(keywords(d))).values()) for d in pool])
    assert same_size >= 0.9 * len(queries)          # the size keyword dominates ...
    assert overlap_top > 1.5 * overlap_all          # ... and operators/bigrams are shared far above chance
    # exact shape match wins; ties go to the newest entry; never a demo of the problem itself
    q = P("*+-*", [3, 4, 5, 6, 7])
    buf.add(P("*+-*", [1, 2, 3, 4, 5]), "OLD")
    assert buf.retrieve(q, 1) == ["OLD"]
    buf.add(P("*+-*", [2, 2, 2, 2, 2]), "NEW")
    assert buf.retrieve(q, 2) == ["NEW", "OLD"]
    assert "NEW" not in buf.retrieve(P("*+-*", [2, 2, 2, 2, 2]), 3)
    assert buf.retrieve(q, 0) == [] and DemoBuffer().retrieve(q, 2) == []


def test_rewrite_of_a_correct_decomposition_is_verifiable_direct_text():
    from hrlzoo.lm.tasks import rewrite_to_direct
    from stages.cog_rethinker.common import draw_problem

    p = chain_params()
    chains = [draw_problem(k, p, np.random.default_rng([7, k, i])) for k in range(2, 9) for i in range(5)]
    for q in make_problems(mixed_level(5, 1), 30, seed=3, level=5) + chains:
        text = rewrite_to_direct(decomposition_solution(q))
        assert text == solution(q) and verify(text, q.answer).correct
    # a decomposition with a wrong step rewrites into the same wrong direct lines; unreadable text gives None
    assert rewrite_to_direct("s1=37+4=42;s2=s1-8=34;</think>#### 34") == "37+4=42;42-8=34;</think>#### 34"
    assert rewrite_to_direct("s1=37+4=41;s2=s3-8=33;</think>#### 33") is None
    assert rewrite_to_direct("s1=37+4;</think>#### 41") is None


# ------------------------------------------------------------------------------ routing
def fake_batch(items, texts, G):
    """A GroupBatch whose completions are the given texts (correct iff the verifier says so)."""
    prompts = [TOK.encode("Q:1<think>", bos=True)] * len(texts)
    pids, pmask = left_pad(prompts, TOK.pad_id)
    comps = [TOK.encode(t, eos=True) for t in texts]
    N = max(len(c) for c in comps)
    tokens = torch.full((len(texts), N), TOK.pad_id)
    mask = torch.zeros((len(texts), N), dtype=torch.bool)
    for r, c in enumerate(comps):
        tokens[r, :len(c)] = torch.tensor(c)
        mask[r, :len(c)] = True
    roll = Rollout(pids, pmask, tokens, mask, torch.zeros(len(texts), N), torch.ones(len(texts), dtype=torch.bool))
    samples = [Sample(items[r // G], r % G, t, len(comps[r]), True) for r, t in enumerate(texts)]
    rewards = torch.tensor([float(verify(s.text, getattr(s.item, "answer")).correct) for s in samples])
    return GroupBatch(list(items), roll, rewards.view(len(items), G), samples, G)


def scripted_runner(method, direct_texts, decomp_fn, reflect_fn, G=4, R=2):
    """A CogRethinker whose rollouts return scripted texts; records what each stage was asked."""
    model = tiny_model()
    cfg = make_config("dapo", group_size=G, max_new_tokens=60, lr=1e-3, eps_low=0.2, eps_high=0.28,
                      temperature=1.0, grad_clip=1.0, grpo_kl=0.0, microbatch_rows=0)
    seed_demos = [P("+-", [1, 2, 3]), P("*+", [4, 5, 6])]
    runner = CogRethinker(model, TOK, method, cfg, DemoBuffer(seed_demos), rescue_samples=R, max_decomp_tokens=80,
                          sft_lambda=1.0, n_demos=1, seed=0)
    asked = {"decomposition": [], "reflection": []}
    runner.trainer.rollout = lambda probs: fake_batch(probs, direct_texts(probs), G)

    def rescue_rollout(slots, cap):
        prompts = [TOK.decode(s.prompts[0]) for s in slots]
        stage = "decomposition" if "<plan>" in prompts[0] else "reflection"
        asked[stage].append([(s.problem, [TOK.decode(x) for x in s.prompts]) for s in slots])
        fn = decomp_fn if stage == "decomposition" else reflect_fn
        return fake_batch(slots, [fn(s.problem, j) for s in slots for j in range(R)], R)

    runner._rescue_rollout = rescue_rollout
    return runner, asked


def wrong_direct(q):
    return f"1+1=2;</think>#### {q.answer + 1}"


def test_routing_through_the_hierarchy():
    easy, mid, hard, harder = (P("+", [1, 2]), P("*-", [3, 4, 5]), P("+*-+", [1, 2, 3, 4, 5]),
                               P("-*+*-", [9, 8, 7, 6, 5, 4]))
    probs = [easy, mid, hard, harder]

    def direct_texts(ps):  # easy: all right; mid: half right; hard, harder: all wrong
        out = []
        for q in ps:
            for j in range(4):
                right = q is easy or (q is mid and j % 2 == 0)
                out.append(solution(q) if right else wrong_direct(q))
        return out

    # decomposition solves `hard` on its second sample only; reflection solves `harder` once
    def decomp(q, j):
        if q is hard and j == 1:
            return decomposition_solution(q)
        return f"s1=1+1=2;</think>#### {q.answer + 5}"

    def reflect(q, j):
        return solution(q) if (q is harder and j == 0) else wrong_direct(q)

    runner, asked = scripted_runner(COG, direct_texts, decomp, reflect)
    before = len(runner.buffer)
    res = runner.rescue(probs, runner.trainer.rollout(probs), [2, 3])
    # decomposition ran on the zero-accuracy problems only, with one BM25 demo in the prompt
    (dec,) = asked["decomposition"]
    assert [q for q, _ in dec] == [hard, harder]
    assert all(pr[0].count("<demo>") == 1 and pr[0].startswith(f"<bos>Q:{q.expr}<demo>") for q, pr in dec)
    # reflection ran only on the problem decomposition did not solve, seeing its wrong solutions:
    # the wrong decomposition, rewritten into direct lines, first; then the wrong direct sample
    (ref,) = asked["reflection"]
    assert [q for q, _ in ref] == [harder]
    prompts = ref[0][1]
    assert prompts[0] == f"<bos>Q:{harder.expr}<wrong>1+1=2;#### {harder.answer + 5}<fix><think>"
    assert prompts[1] == f"<bos>Q:{harder.expr}<wrong>1+1=2;#### {harder.answer + 1}<fix><think>"
    assert res.stage == {2: "decomposition", 3: "reflection"}
    assert res.rescued == {2: [solution(hard)], 3: [solution(harder)]}
    assert res.decomp_correct == 1 and res.reflect_correct == 1
    # the buffer grew by one demo (the solved decomposition), which is now retrieved for its shape
    assert len(runner.buffer) == before + 1
    assert runner.buffer.retrieve(P("+*-+", [2, 3, 4, 5, 6]), 1) == [f"Q:{hard.expr} " + decomposition_solution(hard).replace("</think>", "")]
    # the SFT pairs are (direct prompt, rewritten solution): verifiable direct-template text
    pairs = runner.sft_pairs(probs, res)
    assert [(TOK.decode(a), TOK.decode(b)) for a, b in pairs] == [
        (f"<bos>Q:{hard.expr}<think>", solution(hard) + "<eos>"), (f"<bos>Q:{harder.expr}<think>", solution(harder) + "<eos>")]
    assert all(verify(TOK.decode(b[:-1]), q.answer).correct for (a, b), q in zip(pairs, [hard, harder]))


def test_switches_turn_the_stages_off():
    q = P("+*-+", [1, 2, 3, 4, 5])
    ok = lambda p, j: decomposition_solution(p)  # noqa: E731
    for method, stages in ((MethodParams("dapo", False, True, True, False), ["reflection"]),
                           (MethodParams("dapo", True, False, True, False), ["decomposition"])):
        runner, asked = scripted_runner(method, lambda ps: [wrong_direct(p) for p in ps for _ in range(4)], ok,
                                        lambda p, j: solution(p))
        stats = runner.step([q])
        assert [s for s in asked if asked[s]] == stages
        assert stats["zero_frac"] == 1.0 and stats["rescued_frac"] == 1.0 and stats["sft_examples"] == 1.0
        assert stats["groups_kept"] == 0.0 and "extra_loss" in stats  # the SFT-only update
    dapo = MethodParams("dapo", False, False, False, False)
    runner, asked = scripted_runner(dapo, lambda ps: [wrong_direct(p) for p in ps for _ in range(4)], ok, ok)
    stats = runner.step([q])
    assert not asked["decomposition"] and not asked["reflection"] and "loss" not in stats  # nothing to learn


def test_rescued_solutions_enter_the_group():
    model = tiny_model()
    q = P("+*-+", [1, 2, 3, 4, 5])
    batch = fake_batch([q], [wrong_direct(q)] * 4, 4)
    assert float(batch.rewards.max()) == 0.0
    text = solution(q)
    new = splice_rescued(batch, {0: [text, "1+1=2;", "2+2=4;"]}, model, TOK, 1.0)  # at most G/2 = 2 rows replaced
    assert new.rewards.tolist() == [[1.0, 1.0, 0.0, 0.0]]
    assert new.samples[0].text == text and new.samples[1].text == "1+1=2;" and new.samples[2].text == batch.samples[2].text
    roll = new.rollout
    assert TOK.decode(roll.tokens[0][roll.mask[0]]) == text + "<eos>"
    assert torch.equal(roll.tokens[2][roll.mask[2]], batch.rollout.tokens[2][batch.rollout.mask[2]])
    with torch.no_grad():
        lp = completion_logprobs(model, roll)
    assert torch.allclose(roll.logprobs[:2], lp[:2], atol=1e-6)   # old = current policy: ratio 1
    assert torch.equal(roll.logprobs[2:], torch.zeros_like(roll.logprobs[2:]))



def test_smoke_reference_rows_enter_only_groups_of_equal_rewards():
    """hrlzoo/algos/reference.py: a group whose rewards are all equal gets the reference
    solution in its first row, scored by the reward function; a mixed group is left alone."""
    from hrlzoo.algos.reference import with_references
    from hrlzoo.lm.tasks import correctness_reward

    model = tiny_model()
    q1, q2 = P("+*-+", [1, 2, 3, 4, 5]), P("++", [1, 2, 3])
    batch = fake_batch([q1, q2], [wrong_direct(q1)] * 3 + [solution(q2)] + [wrong_direct(q2)] * 2, 3)
    assert batch.rewards.tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    new = with_references(batch, 1, model, TOK, 1.0, correctness_reward)
    assert new.rewards.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    assert new.samples[0].text == solution(q1) and new.samples[3].text == batch.samples[3].text
    assert group_advantages(new.rewards).abs().min() > 0  # every group now has a signal
    assert with_references(batch, 0, model, TOK, 1.0, correctness_reward) is batch
    assert with_references(batch, 5, model, TOK, 1.0, correctness_reward).rewards[0].tolist() == [1.0, 1.0, 0.0]

def two_steps():
    """Two Cog-Rethinker steps of a tiny model: (their statistics, the parameters after)."""
    model = tiny_model(max_seq_len=320)
    cfg = make_config("dapo", group_size=3, max_new_tokens=20, lr=1e-3, eps_low=0.2, eps_high=0.28,
                      temperature=1.0, grad_clip=1.0, grpo_kl=0.0, microbatch_rows=4)
    runner = CogRethinker(model, TOK, COG, cfg, DemoBuffer(make_problems(mixed_level(3, 1), 4, seed=1, level=3)),
                          rescue_samples=2, max_decomp_tokens=20, sft_lambda=1.0, n_demos=1, seed=5)
    probs = make_problems(mixed_level(3, 1), 6, seed=2, level=3)
    stats = [runner.step(probs[:3]), runner.step(probs[3:])]
    return stats, [p.detach().clone() for p in model.parameters()]


def test_a_run_is_deterministic():
    (s1, p1), (s2, p2) = two_steps(), two_steps()
    drop = {"seconds"}
    assert [{k: v for k, v in s.items() if k not in drop} for s in s1] == \
           [{k: v for k, v in s.items() if k not in drop} for s in s2]
    assert s1[0]["generated_tokens"] > 0 and s1[0]["zero_frac"] == 1.0  # an untrained model solves nothing
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


def test_method_params_reject_sft_without_rescues():
    assert MethodParams("dapo", False, False, True, False).validate() is not None
    assert MethodParams("dapo", False, False, False, False).validate() is None
    with pytest.raises(ValueError):
        make_config("ppo", group_size=2, max_new_tokens=4, lr=1e-3, eps_low=0.2, eps_high=0.28, temperature=1.0,
                    grad_clip=1.0, grpo_kl=0.0, microbatch_rows=0)


def test_corrupted_solutions_feed_the_reflection_template():
    from stages.cog_rethinker.common import draw_problem

    rng = np.random.default_rng(0)
    chains = [draw_problem(6, chain_params(), np.random.default_rng(i)) for i in range(20)]
    for q in make_problems(mixed_level(4, 1), 20, seed=4, level=4) + chains:
        wrong = corrupt_solution(q, rng)
        assert not verify(wrong, q.answer).correct and verify(wrong, int(wrong.split()[-1])).well_formed


def test_problem_sets_are_disjoint_and_the_training_stream_is_new_every_step():
    from conftest import ROOT
    from hrlzoo.lm.tasks import op_steps
    from hrlzoo.pipeline.params import load_params
    from stages.cog_rethinker.common import ProblemStream, held_out_sets
    from stages.cog_rethinker.params import CogParams

    p = load_params("cog_rethinker", CogParams, root=ROOT)
    p.scale = "smoke"
    sets = held_out_sets(p)
    exprs = [{q.expr for q in qs} for qs in sets.values()]
    assert all(len(a & b) == 0 for i, a in enumerate(exprs) for b in exprs[i + 1:])
    held = set().union(*exprs)
    a, b = ProblemStream(p, 0, held).take(200), ProblemStream(p, 0, held).take(200)
    assert a == b and a != ProblemStream(p, 1, held).take(200)
    assert len({q.expr for q in a}) == 200 and not {q.expr for q in a} & held
    assert {q.level for q in a} == set(p.levels)
    lo, hi = p.value_range
    assert all(lo <= s.value <= hi for q in a for s in op_steps(q))


def chain_params(**kw):
    from conftest import ROOT
    from hrlzoo.pipeline.params import load_params
    from stages.cog_rethinker.params import CogParams

    p = load_params("cog_rethinker", CogParams, root=ROOT)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def test_chain_problems_are_left_to_right_in_range_and_deterministic():
    from hrlzoo.lm.tasks import op_steps
    from stages.cog_rethinker.common import draw_problem

    p = chain_params(value_range=[10, 99])
    for k in (1, 4, 8):
        qs = [draw_problem(k, p, np.random.default_rng([3, k, i])) for i in range(60)]
        assert qs == [draw_problem(k, p, np.random.default_rng([3, k, i])) for i in range(60)]
        for q in qs:
            assert q.level == k and len(q.ops) == k and set(q.ops) <= {"+", "-"}
            assert 10 <= q.operands[0] <= 99 and all(1 <= x <= 9 for x in q.operands[1:])
            value = q.operands[0]
            for i, (op, x) in enumerate(zip(q.ops, q.operands[1:])):  # step i: previous result op operand i+1
                s = op_steps(q)[i]
                assert (s.left, s.op, s.right) == (value, op, x)
                value = value + x if op == "+" else value - x
                assert 10 <= value <= 99 and s.value == value
            assert q.answer == value
        assert {q.ops.count("+") for q in qs} != {k} and len({q.expr for q in qs}) > 50  # both operators, varied
    # a hand example and its three texts
    q = Problem((37, 4, 8), ("+", "-"), 2, "ops")
    assert solution(q) == "37+4=41;41-8=33;</think>#### 33"
    assert decomposition_solution(q) == "s1=37+4=41;s2=s1-8=33;</think>#### 33"
    from hrlzoo.lm.tasks import rewrite_to_direct

    assert rewrite_to_direct(decomposition_solution(q)) == solution(q)
    # a narrow range forces redraws: every value stays inside it
    narrow = chain_params(value_range=[20, 40])
    for i in range(30):
        q = draw_problem(6, narrow, np.random.default_rng(i))
        assert all(20 <= s.value <= 40 for s in op_steps(q)) and 20 <= q.operands[0] <= 40


def test_verifier_is_exact_on_chain_answers():
    q = Problem((37, 4, 8), ("+", "-"), 2, "ops")
    assert verify(solution(q), 33).correct
    for bad in ("37+4=41;41-8=33;</think>#### 34", "37+4=41;41-8=33;#### 33", "37+4=41;</think>#### 033",
                "37+4=41;</think>#### 33 x", "37+4=41;</think>"):
        assert not verify(bad, 33).correct
    assert verify("garbled;</think>#### 33", 33).correct   # only the final answer is checked (the 0/1 reward)


def test_decomposition_with_values_rewrites_to_the_direct_trace_and_seeds_the_buffer():
    from hrlzoo.lm.tasks import demonstration, rewrite_to_direct
    from stages.cog_rethinker.method import decomposition_text, seed_buffer

    q = Problem((37, 4, 8), ("+", "-"), 2, "ops")
    assert decomposition_text(q) == "s1=37+4=41;s2=41-8=33;</think>#### 33"
    assert decomposition_text(q, values=False) == decomposition_solution(q) == "s1=37+4=41;s2=s1-8=33;</think>#### 33"
    assert rewrite_to_direct(decomposition_text(q)) == solution(q) == "37+4=41;41-8=33;</think>#### 33"
    # a wrong value in a line stays wrong after the rewrite (nothing is recomputed)
    assert rewrite_to_direct("s1=37+4=42;s2=42-8=34;</think>#### 34") == "37+4=42;42-8=34;</think>#### 34"
    buf = seed_buffer([q, Problem((50, 3), ("-",), 1, "ops")])
    assert buf.demos[0] == demonstration(q, decomposition_text(q)) == "Q:37+4-8 s1=37+4=41;s2=41-8=33;#### 33"
    assert seed_buffer([q], values=False).demos == [demonstration(q)]


def test_shared_prefill_gives_the_same_run(monkeypatch):
    """The sampler's shared prefill (a group's repeated prompt run once) leaves a Cog-Rethinker
    run bit-for-bit unchanged: the same statistics and parameters as prefilling every row."""
    import functools

    import hrlzoo.algos.grpo as grpo
    from hrlzoo.lm import sampler

    fast = two_steps()
    monkeypatch.setattr(grpo, "sample", functools.partial(sampler.sample, share_prefill=False))
    slow = two_steps()
    assert fast[0] == slow[0] and fast[0][0]["zero_frac"] == 1.0  # every group went through the rescue rollouts
    assert all(torch.equal(a, b) for a, b in zip(fast[1], slow[1]))
