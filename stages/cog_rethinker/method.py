"""Cog-Rethinker (Sun, Zeng, Min, Gao, Ji, Chen; arXiv 2510.15979): hierarchical metacognitive
RL on top of DAPO, as we read it. There is no official code; spec_B §6.2-6.3 reconstructs the
method from the abstract and the public ICLR reviews, and every detail below that those do
not state is our reading (marked "ours").

One RL step on n new training problems (the rollout hierarchy, spec_B §6.2):

 1. Direct rollout: G samples of the direct template `Q:<expr><think>` per problem, each
    scored 0/1 by the exact verifier (a completion cut at the token cap scores 0).
 2. Problems with zero accuracy (all G wrong) -> decomposition rollout: `rescue_samples`
    samples of `Q:<expr><demo>d..<plan><think>` (sub-problems `s1=..;s2=..;`), the
    demonstrations d retrieved by BM25 over `keywords(problem)` from a buffer that grows with
    every problem the decomposition solves (`DemoBuffer`).
 3. Problems still at zero accuracy -> reflection rollout: `Q:<expr><wrong>w<fix><think>`,
    w a previous wrong solution of that problem (ours: a wrong decomposition rewritten into
    the direct lines if one is readable, else a wrong direct sample; sample j of the group
    sees the j-th such solution, cyclically).
 4. Every correct stage-2/3 sample is rewritten into the direct template
    (`hrlzoo.lm.tasks.rewrite_to_direct`), verified again, and becomes an SFT pair
    (direct prompt, rewritten text); distinct texts only (ours).

Loss of the step (spec_B §6.3; "DAPO + lambda SFT" is the reviewers' description, the form ours):

    L = -J_DAPO + lambda * L_SFT                                           (`cog_objective`)
    -J_DAPO = (1 / sum_i |o_i|) sum_i sum_t -min(rho_i,t A_i, clip(rho_i,t, 1 - eps_low,
              1 + eps_high) A_i)            (DAPO Eq. 10 and 12; hrlzoo.algos.grpo.policy_loss)
              over the direct groups whose rewards are not all equal (dynamic sampling, DAPO
              Eq. 11; no refill, ours), A_i = (R_i - mean R) / (std R + eps) within the group
    L_SFT   = -(1/|D|) sum_{(q,o) in D} (1/|o|) sum_t log pi(o_t | T_direct(q), o_<t)
              (D: this step's rewritten rescued solutions; `sft_loss`)

One optimizer step per RL step (one epoch, one minibatch): the SFT term enters
`hrlzoo.algos.grpo.ppo_update` through its `extra_loss` hook; when no direct group survives
the filter but D is not empty, the step is the SFT term alone (`sft_only_update`).

Switches (`MethodParams`): `decomposition`, `reflection`, `sft` turn the parts off for the
ablations; `rescued_to_group` (spec_B 6.3's open choice, default off) instead puts up to G/2
rescued solutions into their direct group as reward-1 samples, in place of wrong ones, with
the current policy's log-probs as the old ones (ratio 1 at the update). GRPO runs the same
loop with GRPO's loss (sequence-mean, symmetric clip, no filter) and no hierarchy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch

from hrlzoo.algos.grpo import (GroupBatch, GRPOConfig, GRPOTrainer, drop_uniform_groups,
                               group_advantages, policy_loss, ppo_update, rollout_groups)
from hrlzoo.algos.reference import splice_completions, with_references
from hrlzoo.lm.sft import collate_pairs, completion_nll
from hrlzoo.lm.tasks import (ANSWER_MARK, Problem, correctness_reward, decomposition_prompt, decomposition_solution,
                             demonstration, direct_prompt, keywords, op_steps, parse_answer, reflection_prompt,
                             rewrite_to_direct, verify)
from hrlzoo.lm.tokenizer import END_THINK
from hrlzoo.pipeline.stage import NonFiniteError
from stages.cog_rethinker.params import MethodParams


# ------------------------------------------------------------------------------ retrieval
def decomposition_text(problem: Problem, values: bool = True) -> str:
    """The decomposition template's solution: one named sub-problem per line, solved in order.
    `values=False`: sub-problems name the earlier sub-results they use, `s2=s1-8=33`
    (`hrlzoo.lm.tasks.decomposition_solution`); `values=True` (ours, the default): they state
    the value, `s2=41-8=33`, so a line never needs a value it does not show (a 0.8 M GPT did not
    learn the two-hop `s1` lookup within the `cpu` budget). `rewrite_to_direct` reads both."""
    if not values:
        return decomposition_solution(problem)
    steps = op_steps(problem)
    body = "".join(f"s{i}={s.left}{s.op}{s.right}={s.value};" for i, s in enumerate(steps, 1))
    return f"{body}{END_THINK}{ANSWER_MARK} {steps[-1].value}"


def seed_buffer(problems: Sequence[Problem], values: bool = True) -> "DemoBuffer":
    """The initial BM25 buffer: a worked decomposition (`decomposition_text`) of every problem."""
    return DemoBuffer(problems, [demonstration(q, decomposition_text(q, values)) for q in problems])


class DemoBuffer:
    """Worked decomposition examples, retrieved by BM25 (rank_bm25.BM25Okapi, k1 1.5, b 0.75)
    over `keywords(problem)`: operators in order, operator bigrams, the number of operands.
    Ties go to the newest entry (ours); a problem never retrieves a demo of itself."""

    def __init__(self, problems: Sequence[Problem] = (), demos: Sequence[str] | None = None):
        self.problems: list[Problem] = []
        self.demos: list[str] = []
        self._index = None
        for i, q in enumerate(problems):
            self.add(q, demonstration(q) if demos is None else demos[i])

    def __len__(self) -> int:
        return len(self.demos)

    def add(self, problem: Problem, demo: str) -> None:
        self.problems.append(problem)
        self.demos.append(demo)
        self._index = None  # BM25's idf depends on the whole corpus: rebuilt on the next query

    def scores(self, problem: Problem) -> np.ndarray:
        from rank_bm25 import BM25Okapi

        if not self.problems:
            return np.zeros(0)
        if self._index is None:
            self._index = BM25Okapi([keywords(q) for q in self.problems])
        return np.asarray(self._index.get_scores(keywords(problem)), dtype=np.float64)

    def retrieve(self, problem: Problem, m: int) -> list[str]:
        """The m best demonstrations for `problem`, best first."""
        if m <= 0 or not self.problems:
            return []
        s = self.scores(problem)
        order = sorted(range(len(s)), key=lambda i: (-s[i], -i))
        return [self.demos[i] for i in order if self.problems[i].expr != problem.expr][:m]


# ------------------------------------------------------------------------------ the loss
def sft_loss(model, pairs: Sequence[tuple[list[int], list[int]]], pad_id: int) -> torch.Tensor:
    """L_SFT over (prompt ids, completion ids) pairs: mean over pairs of the mean NLL of each
    completion's tokens (spec_B 6.3)."""
    device = next(model.parameters()).device
    ids, mask = collate_pairs(pairs, pad_id)
    return completion_nll(model, ids.to(device), mask.to(device), reduction="sequence")


def cog_objective(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
                  cfg: GRPOConfig, sft_logp: torch.Tensor, sft_mask: torch.Tensor, lam: float) -> torch.Tensor:
    """L = -J_DAPO + lambda * L_SFT from per-token log-probs: the direct rollouts' (logp,
    old_logp, mask [B, N], adv [B]) and the SFT targets' (sft_logp, sft_mask [D, M]). Training
    computes the same sum through `ppo_update(extra_loss=lambda * sft_loss)` (tested equal)."""
    pg, _ = policy_loss(logp, old_logp, adv, mask, cfg)
    m = sft_mask.float()
    l_sft = -((sft_logp * m).sum(1) / m.sum(1)).mean()
    return pg + lam * l_sft


def sft_only_update(model, opt: torch.optim.Optimizer, loss_fn, grad_clip: float, step: int) -> dict:
    """One optimizer step on lambda * L_SFT alone (no direct group left after the filter)."""
    model.train()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn()
    value = loss.item()
    if not np.isfinite(value):
        raise NonFiniteError(f"cog_rethinker: SFT loss is {value} at step {step}")
    loss.backward()
    stats = {"loss": value, "extra_loss": value}
    if grad_clip:
        stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    opt.step()
    return stats


# ------------------------------------------------------------------------------ the hierarchy
@dataclass
class Slot:
    """One problem of a rescue rollout: its group in the step's direct batch and its prompts
    (sample j of the slot uses prompts[j % len(prompts)])."""

    group: int
    problem: Problem
    prompts: list[list[int]]

    @property
    def answer(self) -> int:  # what `correctness_reward` checks
        return self.problem.answer


@dataclass
class Rescue:
    """What the hierarchy found for one step."""

    zero: list[int]                                              # groups with zero direct accuracy
    rescued: dict[int, list[str]] = field(default_factory=dict)  # group -> distinct direct-template texts
    stage: dict[int, str] = field(default_factory=dict)          # group -> "decomposition" | "reflection"
    tokens: int = 0                                              # generated by the rescue rollouts
    prompt_tokens: int = 0
    decomp_correct: int = 0                                      # correct samples per stage
    reflect_correct: int = 0
    unrewritable: int = 0                                        # correct, but not readable as direct text


def _dedup(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(texts))


class CogRethinker:
    """One RL run: the policy, its optimizer and random streams (a `GRPOTrainer`), the demo
    buffer and the method's switches. `step(problems)` does one RL step and returns its stats."""

    def __init__(self, model, tok, method: MethodParams, cfg: GRPOConfig, buffer: DemoBuffer, *,
                 rescue_samples: int, max_decomp_tokens: int, sft_lambda: float, n_demos: int, seed: int,
                 reference_rows: int = 0):
        self.tok, self.method, self.cfg, self.buffer = tok, method, cfg, buffer
        self.reference_rows = reference_rows  # smoke only (hrlzoo/algos/reference.py); 0: the method
        self.rescue_samples, self.max_decomp_tokens = rescue_samples, max_decomp_tokens
        self.sft_lambda, self.n_demos = sft_lambda, n_demos
        self.max_seq_len = model.cfg.max_seq_len
        self.trainer = GRPOTrainer(model, cfg, prompt_fn=self._direct_ids, reward_fn=correctness_reward, tok=tok,
                                   stop_ids=[tok.eos_id], seed=seed)
        self.prompt_tokens = 0
        self.seconds = 0.0
        self._ids: dict[str, list[int]] = {}

    @property
    def model(self):
        return self.trainer.model

    @property
    def generated_tokens(self) -> int:
        return self.trainer.generated_tokens

    def _encode(self, text: str) -> list[int]:
        if text not in self._ids:
            self._ids[text] = self.tok.encode(text, bos=True)
        return self._ids[text]

    def _direct_ids(self, problem: Problem, j: int) -> list[int]:
        return self._encode(direct_prompt(problem))

    def _rescue_rollout(self, slots: list[Slot], max_new_tokens: int) -> GroupBatch:
        """`rescue_samples` scored completions per slot, from the run's sampling stream."""
        cfg = replace(self.cfg, group_size=self.rescue_samples, max_new_tokens=max_new_tokens)
        return rollout_groups(self.model, slots, cfg, prompt_fn=lambda slot, j: slot.prompts[j % len(slot.prompts)],
                              reward_fn=correctness_reward, tok=self.tok, pad_id=self.tok.pad_id,
                              stop_ids=[self.tok.eos_id], generator=self.trainer.gen)

    def rescue(self, problems: Sequence[Problem], direct: GroupBatch, zero: list[int]) -> Rescue:
        """Stages 2 and 3 of the hierarchy on the zero-accuracy groups `zero`."""
        res = Rescue(zero=list(zero))
        G = direct.group_size
        # previous wrong solutions of each problem, the decomposition's (rewritten) put first later
        wrong: dict[int, list[str]] = {}
        for g in zero:
            texts = [direct.samples[g * G + j].text for j in range(G)]
            formed = [t for t in texts if parse_answer(t) is not None]
            wrong[g] = _dedup(formed) or _dedup(texts)
        todo = list(zero)

        if self.method.decomposition and todo:
            slots = [Slot(g, problems[g], [self._encode(decomposition_prompt(
                problems[g], self.buffer.retrieve(problems[g], self.n_demos)))]) for g in todo]
            slots = [s for s in slots if len(s.prompts[0]) + self.max_decomp_tokens <= self.max_seq_len]
            if slots:
                b = self._rescue_rollout(slots, self.max_decomp_tokens)
                res.tokens += int(b.rollout.mask.sum())
                res.prompt_tokens += int(b.rollout.prompt_mask.sum())
                for s_i, slot in enumerate(slots):
                    q, g = slot.problem, slot.group
                    outs = b.samples[s_i * self.rescue_samples:(s_i + 1) * self.rescue_samples]
                    good, bad = [], []
                    for smp, r in zip(outs, b.rewards[s_i].tolist()):
                        direct_text = rewrite_to_direct(smp.text)
                        if r > 0:
                            res.decomp_correct += 1
                            if direct_text is not None and verify(direct_text, q.answer).correct:
                                good.append(direct_text)
                                if len(good) == 1:  # the buffer grows by one demo per solved problem
                                    self.buffer.add(q, demonstration(q, smp.text))
                            else:
                                res.unrewritable += 1
                        elif direct_text is not None and parse_answer(direct_text) is not None:
                            bad.append(direct_text)
                    if good:
                        res.rescued[g], res.stage[g] = _dedup(good), "decomposition"
                    elif bad:
                        wrong[g] = _dedup(bad + wrong[g])
            todo = [g for g in todo if g not in res.rescued]

        if self.method.reflection and todo:
            slots = []
            for g in todo:
                cands = [self._encode(reflection_prompt(problems[g], w)) for w in wrong[g]]
                cands = [c for c in cands if len(c) + self.cfg.max_new_tokens <= self.max_seq_len]
                if cands:
                    slots.append(Slot(g, problems[g], cands[: self.rescue_samples]))
            if slots:
                b = self._rescue_rollout(slots, self.cfg.max_new_tokens)
                res.tokens += int(b.rollout.mask.sum())
                res.prompt_tokens += int(b.rollout.prompt_mask.sum())
                for s_i, slot in enumerate(slots):
                    q, g = slot.problem, slot.group
                    outs = b.samples[s_i * self.rescue_samples:(s_i + 1) * self.rescue_samples]
                    good = []
                    for smp, r in zip(outs, b.rewards[s_i].tolist()):
                        if r > 0:
                            res.reflect_correct += 1
                            direct_text = rewrite_to_direct(smp.text)
                            if direct_text is not None and verify(direct_text, q.answer).correct:
                                good.append(direct_text)
                            else:
                                res.unrewritable += 1
                    if good:
                        res.rescued[g], res.stage[g] = _dedup(good), "reflection"
        return res

    def sft_pairs(self, problems: Sequence[Problem], res: Rescue) -> list[tuple[list[int], list[int]]]:
        """D: (direct prompt, rewritten solution + EOS) for every rescued text, groups in order."""
        return [(self._direct_ids(problems[g], 0), self.tok.encode(text, eos=True))
                for g in sorted(res.rescued) for text in res.rescued[g]]

    def step(self, problems: Sequence[Problem]) -> dict:
        """One RL step on `problems` (see the module docstring). Returns its statistics."""
        t0 = time.perf_counter()
        tr, cfg = self.trainer, self.cfg
        direct = tr.rollout(problems)
        self.prompt_tokens += int(direct.rollout.prompt_mask.sum())
        G = direct.group_size
        zero = [g for g in range(direct.n_groups) if float(direct.rewards[g].max()) <= 0.0]
        res = self.rescue(problems, direct, zero) if (self.method.rescues and zero) else Rescue(zero=zero)
        tr.generated_tokens += res.tokens
        self.prompt_tokens += res.prompt_tokens

        batch = direct
        if self.method.rescued_to_group and res.rescued:
            batch = splice_rescued(direct, res.rescued, self.model, self.tok, cfg.temperature)
        if self.reference_rows:
            batch = with_references(batch, self.reference_rows, self.model, self.tok, cfg.temperature,
                                    correctness_reward)
        kept = drop_uniform_groups(batch) if cfg.dynamic_sampling else batch
        pairs = self.sft_pairs(problems, res) if self.method.sft else []
        extra = None
        if pairs and self.sft_lambda > 0:
            def extra():
                return self.sft_lambda * sft_loss(self.model, pairs, self.tok.pad_id)

        stats: dict[str, float] = {}
        if kept.n_groups:
            adv = group_advantages(kept.rewards, std_normalize=cfg.std_normalize, eps=cfg.adv_eps)
            stats = ppo_update(self.model, tr.opt, kept, adv, cfg, ref_model=tr.ref_model, generator=tr.shuffle_gen,
                               extra_loss=extra, step=tr.steps_done)
        elif extra is not None:
            stats = sft_only_update(self.model, tr.opt, extra, cfg.grad_clip, tr.steps_done)
        tr.steps_done += 1

        mixed = ~(batch.rewards == batch.rewards[:, :1]).all(1)
        n = direct.n_groups
        stats.update({
            "direct_acc": direct.rewards.mean().item(),
            "zero_frac": len(zero) / n,
            "rescued_frac": len(res.rescued) / n,
            "rescued_decomposition": float(sum(s == "decomposition" for s in res.stage.values())),
            "rescued_reflection": float(sum(s == "reflection" for s in res.stage.values())),
            "decomp_correct": float(res.decomp_correct),
            "reflect_correct": float(res.reflect_correct),
            "unrewritable": float(res.unrewritable),
            "sft_examples": float(len(pairs)),
            "groups_kept": float(kept.n_groups),
            "utilisation": float(mixed.float().mean().item()),  # direct rollouts with a non-zero advantage
            "direct_length": direct.rollout.lengths.float().mean().item(),
            "buffer": float(len(self.buffer)),
            "generated_tokens": float(self.generated_tokens),
            "prompt_tokens": float(self.prompt_tokens),
        })
        self.seconds += time.perf_counter() - t0  # wall time stays out of the stats: artifacts are deterministic
        return stats


def splice_rescued(batch: GroupBatch, rescued: dict[int, list[str]], model, tok, temperature: float) -> GroupBatch:
    """`rescued_to_group`: the first rows of each rescued group replaced by up to G/2 of its
    rescued direct-template texts (reward 1, old log-probs = the current policy's)."""
    G = batch.group_size
    comps = {g * G + j: tok.encode(text, eos=True)
             for g in sorted(rescued) for j, text in enumerate(rescued[g][: G // 2])}
    return splice_completions(batch, comps, model, tok, temperature, 1.0)


def make_config(algo: str, *, group_size: int, max_new_tokens: int, lr: float, eps_low: float, eps_high: float,
                temperature: float, grad_clip: float, grpo_kl: float, microbatch_rows: int) -> GRPOConfig:
    """DAPO (token-mean, clip-higher, dynamic sampling, no KL) or GRPO (sequence-mean,
    symmetric clip, every group, KL beta = grpo_kl) with the shared knobs; one epoch, one
    minibatch (one optimizer step per RL step)."""
    common = dict(group_size=group_size, max_new_tokens=max_new_tokens, lr=lr, temperature=temperature,
                  grad_clip=grad_clip, microbatch_rows=microbatch_rows, epochs=1, minibatches=1)
    if algo == "dapo":
        return GRPOConfig.dapo(eps_low=eps_low, eps_high=eps_high, max_refill_rounds=0, **common)
    if algo == "grpo":
        return GRPOConfig.grpo(eps_low=eps_low, eps_high=eps_low, kl_coef=grpo_kl, **common)
    raise ValueError(f"unknown algo {algo!r}")
