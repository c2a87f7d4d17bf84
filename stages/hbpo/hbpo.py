"""HBPO: Hierarchical Budget Policy Optimization (Lyu et al., arXiv 2507.15844), core equations.

Every rollout group of a query holds k budget subgroups G_1..G_k (n/k samples each); subgroup i
is generated with the budget b_i prefilled right after the reasoning tag (our budget token
`<b_i>` after `<think>`; the paper's "I will answer the question within b_i tokens").
Notation as the paper: n_gen = generated tokens, L_max = the training window, beta = 4,
alpha = 1 / L_max.

Reward (paper §3.2, Eq. 1-3; `budget_reward`):

    f1(n, b) = beta * cos(pi n / (2 L_max)) - alpha |n - b|                         (Eq. 2)
    f2(b)    = beta * cos(pi b / (2 L_max))                                         (Eq. 3)
    R(n | b) = f1(n, b)  if correct and b < n <= L_max                              (Eq. 1)
               f2(b)     if correct and n <= b
               0         otherwise

  The official code (ZJU-REAL/HBPO `rllm/rewards/math_reward.py`, `RewardMathFn.__call__`)
  differs in two ways, each behind a switch here:
  - `form="official_min"`: a correct answer with n <= 4096 gets min(f1(n, b), f2(b)) (equal to
    the paper's R for n > b, and below f2(b) for short answers when alpha (b - n) exceeds the
    cosine gain, e.g. b = 512, n -> 0: 3.875 < 3.923);
  - `format_penalty=-1`: a response without `</think>` or without an extractable answer gets
    `format_error_reward = -1` (the paper's "otherwise" gives 0).
  (The code also writes pi as 3.1416; we use math.pi: a relative difference below 1e-5.)

Baselines' rewards (paper §5 "traditional efficient reasoning methods", Table 5):
  `classic_reward`: 1 if correct else 0 (DeepSeek-R1's rule; the code's commented `retval = 1`);
  `cosine_reward`:  beta * cos(pi n / (2 L_max)) if correct else 0 (what the code gives a
  correct response that carries no budget sentence).

Advantage (paper Alg. 1 and §3.3; `hbpo_advantages`), for the n rewards R_{i,j} of one query:

    mu_i          = mean_j R_{i,j}                        (mean of subgroup i)
    A^intra_i     = mu_i - f2(b_i)                        (Alg. 1 line 12; <= 0 in the paper's form)
    A^inter_{i,j} = (R_{i,j} - mean_{i,j} R) / std(R)     (Eq. 4: over all n samples of the query)
    A_{i,j}       = A^intra_i + A^inter_{i,j}             (Eq. 5), on every response token

  The official `compute_grpo_outcome_advantage` (verl/trainer/ppo/core_algos.py) adds the intra
  term twice (inside the budget branch and again after it): `intra_coef=2` reproduces it.
  std is the unbiased one and eps = 1e-6, both as the code.

Budget token as an action (`budget_as_action`): in the official rollout
(`verl/workers/rollout/vllm_rollout/vllm_rollout_spmd-hierarchical.py`) the prefilled budget
sentence is prepended to the *response*: it counts in n_gen and carries the response's
advantage in the policy loss like a generated token. The paper does not say; with
`budget_in_response` the budget token is moved from the prompt into the response the same way.
This is what lets the policy choose a budget itself when none is given (natural mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # torch is imported where it is used: params.py reads this file's constants
    import torch

REWARD_FORMS = ("paper", "official_min")
REWARD_KINDS = ("budget", "classic", "cosine")


@dataclass(frozen=True)
class RewardSpec:
    """Constants of the rewards: L_max, beta, alpha (default 1 / L_max), the form of the
    budget reward and the reward of a malformed response."""

    l_max: int
    beta: float = 4.0
    alpha: float | None = None
    form: str = "paper"
    format_penalty: float = 0.0

    def __post_init__(self):
        if self.l_max < 1:
            raise ValueError(f"l_max must be >= 1, got {self.l_max}")
        if self.form not in REWARD_FORMS:
            raise ValueError(f"form must be one of {REWARD_FORMS}, got {self.form!r}")

    @property
    def a(self) -> float:
        return 1.0 / self.l_max if self.alpha is None else self.alpha


def f1(n: float, b: float, spec: RewardSpec) -> float:
    """Eq. 2: beta cos(pi n / 2 L_max) - alpha |n - b| (cosine decay + deviation penalty)."""
    return spec.beta * math.cos(math.pi * n / (2 * spec.l_max)) - spec.a * abs(n - b)


def f2(b: float, spec: RewardSpec) -> float:
    """Eq. 3: beta cos(pi b / 2 L_max), the reward of a correct answer inside budget b."""
    return spec.beta * math.cos(math.pi * b / (2 * spec.l_max))


def budget_reward(correct: bool, well_formed: bool, n: int, b: int, spec: RewardSpec) -> float:
    """Eq. 1 (form "paper") or the official min(f1, f2) (form "official_min"); a malformed
    response gets `spec.format_penalty`, a wrong one (or one beyond L_max) 0."""
    if not well_formed:
        return spec.format_penalty
    if not correct or n > spec.l_max:
        return 0.0
    if spec.form == "official_min":
        return min(f1(n, b, spec), f2(b, spec))
    return f2(b, spec) if n <= b else f1(n, b, spec)


def cosine_reward(correct: bool, well_formed: bool, n: int, spec: RewardSpec) -> float:
    """The cosine baseline: beta cos(pi n / 2 L_max) for a correct answer within L_max."""
    if not well_formed:
        return spec.format_penalty
    if not correct or n > spec.l_max:
        return 0.0
    return spec.beta * math.cos(math.pi * n / (2 * spec.l_max))


def classic_reward(correct: bool, well_formed: bool, spec: RewardSpec) -> float:
    """The classic 0/1 baseline (a malformed response gets the same format penalty)."""
    if not well_formed:
        return spec.format_penalty
    return 1.0 if correct else 0.0


def subgroup_budgets(budgets: Sequence[int], group_size: int) -> list[int]:
    """The budget of each sample j of a group: k equal subgroups in budget order,
    sample j in subgroup j // (group_size / k) (the official rollout's layout)."""
    k = len(budgets)
    if k == 0 or group_size % k:
        raise ValueError(f"group_size {group_size} is not a multiple of {k} budgets")
    per = group_size // k
    return [int(budgets[j // per]) for j in range(group_size)]


def hbpo_advantages(rewards: torch.Tensor, budgets: Sequence[int], spec: RewardSpec, *,
                    intra_coef: float = 1.0, eps: float = 1e-6) -> torch.Tensor:
    """A [n_groups, G] = intra_coef * A^intra + A^inter (Alg. 1, Eq. 4-5) for rewards
    [n_groups, G] whose sample j was generated under budget `budgets[j]`."""
    import torch

    if rewards.shape[1] != len(budgets):
        raise ValueError(f"{rewards.shape[1]} samples per group but {len(budgets)} budgets")
    R = rewards.double()
    inter = (R - R.mean(1, keepdim=True)) / (R.std(1, keepdim=True) + eps)
    b = torch.as_tensor(list(budgets))
    intra = torch.zeros_like(R)
    for value in b.unique().tolist():
        cols = b == value
        intra[:, cols] = R[:, cols].mean(1, keepdim=True) - f2(value, spec)
    return (intra_coef * intra + inter).to(rewards.dtype)


def budget_as_action(roll, model, temperature: float = 1.0):
    """The rollout with the last prompt token (the prefilled budget token) moved to the front
    of the response, with its log-prob under the sampling policy (logits / temperature), so
    the policy loss treats it as the first response token (the official rollout's layout)."""
    import torch

    from hrlzoo.lm.sampler import Rollout, token_logprobs

    P = roll.prompt_ids.shape[1]
    with torch.no_grad():
        lp = token_logprobs(model, roll.prompt_ids, roll.prompt_mask, start=P - 1,
                            temperature=temperature)  # [B, 1]: the budget token given the rest
    ones = torch.ones_like(roll.mask[:, :1])
    return Rollout(roll.prompt_ids[:, :-1], roll.prompt_mask[:, :-1],
                   torch.cat([roll.prompt_ids[:, -1:], roll.tokens], 1),
                   torch.cat([ones, roll.mask], 1),
                   torch.cat([lp.to(roll.logprobs.dtype), roll.logprobs], 1), roll.finished)
