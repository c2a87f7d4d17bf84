"""HERON's core equations: hierarchical preference labels and the Bradley-Terry loss.

Paper: Bukharin et al., "Deep RL from Hierarchical Weak Preference Feedback" (2023), Sec. 3
("HERON": the hierarchical decision tree and reward learning). Official code:
abukharin3/HERON, ClassicControl/cleanrl/ddpg_rm.py (`RewardModel.get_loss`, `train_rm`) and
robots/stable_baselines3/ppo/heron.py (`RLHFRewardModel`, the flat-sum baseline).

Notation. A transition x carries n reward factors z_1(x)..z_n(x). The expert gives
- an importance ranking h (a permutation: h[0] is the most important factor),
- a sign s_k per factor (+1: higher is better, -1: lower is better),
- a margin delta_k per factor: delta_k = sigma_mult_k * std(z_k) over the data seen so far.

Decision tree (Sec. 3, "hierarchical decision tree"; `get_loss` in ddpg_rm.py): for a pair
(x_i, x_j) walk the levels l = 0..n-1 with k = h[l]:
    if   s_k z_k(i) > s_k z_k(j) + delta_k:  i > j  (decided at level l)
    elif s_k z_k(j) > s_k z_k(i) + delta_k:  j > i  (decided at level l)
    else: tie within the margin, go to level l+1
and a pair tied at every level is discarded (no loss term).

Reward learning (Sec. 3, Bradley-Terry): with w the preferred and l the other transition,
    L(phi) = - sum_{labelled pairs} log sigmoid(r_phi(x_w) - r_phi(x_l)) / (#pairs + 1e-5)
over the pairs (i, j) with j < i inside a minibatch (the official double loop
`for i in range(B): for j in range(i)`), i.e. each unordered pair once.

Everything here is vectorised: labels for all B^2 ordered pairs are built with one [B, B]
comparison per level (a Python loop over the n levels only).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

UNDECIDED = -1  # the `level` of a pair that no level decides


def margins(z_buffer: torch.Tensor, sigma_mult: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """delta_k = sigma_mult_k * std(z_k) over the whole buffer [N, n] -> [n].

    As the official `train_rm` (`reward_buffer.std(0) * sigma_mult`), the std is torch's
    unbiased one (divides by N - 1). With fewer than two rows the std is undefined; we return
    zero margins then (the official code would produce NaN, which makes every pair a tie)."""
    mult = torch.as_tensor(sigma_mult, dtype=z_buffer.dtype, device=z_buffer.device)
    if z_buffer.shape[0] < 2:
        return torch.zeros_like(mult)
    return z_buffer.std(dim=0, unbiased=True) * mult


def hierarchical_labels(z: torch.Tensor, signs: Sequence[int] | torch.Tensor,
                        ranking: Sequence[int], margins: torch.Tensor | Sequence[float]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Decision-tree labels of every ordered pair of a minibatch.

    z: [B, n] factors (already scaled); signs: [n] of +-1; ranking: permutation of 0..n-1,
    most important first; margins: [n] delta_k (indexed by factor, not by level).

    Returns (pref, level), both [B, B]:
      pref[i, j]  = +1 if x_i > x_j, -1 if x_j > x_i, 0 if tied at every level (int8);
      level[i, j] = the level l (0-based position in `ranking`) that decided, or -1 (int64).
    pref is antisymmetric and level symmetric; the diagonal is always undecided.
    """
    B = z.shape[0]
    s = torch.as_tensor(signs, dtype=z.dtype, device=z.device)
    delta = torch.as_tensor(margins, dtype=z.dtype, device=z.device)
    sz = z * s  # s_k z_k: larger is better for every factor
    pref = torch.zeros(B, B, dtype=torch.int8, device=z.device)
    level = torch.full((B, B), UNDECIDED, dtype=torch.int64, device=z.device)
    open_ = torch.ones(B, B, dtype=torch.bool, device=z.device)  # not decided by an earlier level
    for l, k in enumerate(ranking):
        a = sz[:, k].unsqueeze(1)  # s_k z_k(i), broadcast over j
        b = sz[:, k].unsqueeze(0)  # s_k z_k(j), broadcast over i
        # the two comparisons exactly as written in the official get_loss (no rearranging, so
        # float rounding at the margin's edge matches the reference)
        i_better = open_ & (a > b + delta[k])
        j_better = open_ & (b > a + delta[k])
        pref[i_better] = 1
        pref[j_better] = -1
        decided = i_better | j_better
        level[decided] = l
        open_ &= ~decided
    return pref, level


def flat_sum_labels(z: torch.Tensor, signs: Sequence[int] | torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The "RLHF" baseline's labels (robots code, `RLHFRewardModel.get_loss`): x_i > x_j iff
    sum_k s_k z_k(i) > sum_k s_k z_k(j); equal sums are discarded. Same outputs as
    `hierarchical_labels`, with level 0 for every decided pair.

    Deviation: the official code compares the unsigned sum (its robot factors are all
    higher-is-better) and, on an exact tie, re-adds the previous pair's loss (a stale
    variable); we use the signed sum and drop ties."""
    s = torch.as_tensor(signs, dtype=z.dtype, device=z.device)
    total = (z * s).sum(dim=1)
    a, b = total.unsqueeze(1), total.unsqueeze(0)
    pref = (a > b).to(torch.int8) - (b > a).to(torch.int8)
    level = torch.where(pref != 0, 0, UNDECIDED).to(torch.int64)
    return pref, level


def pair_mask(B: int, device=None) -> torch.Tensor:
    """[B, B] bool, True where j < i: each unordered pair once (the official j in range(i))."""
    return torch.ones(B, B, dtype=torch.bool, device=device).tril(diagonal=-1)


def bradley_terry_loss(r: torch.Tensor, pref: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bradley-Terry loss of rewards r [B] under labels pref [B, B] (from the labellers above).

    Over the labelled pairs j < i:  loss = sum -log sigmoid(r_w - r_l) / (count + 1e-5),
    exactly the official normalisation (`total_loss / (total + 1e-5)`), so with no labelled
    pair the loss is 0 (and carries no gradient). -log sigmoid is computed as -logsigmoid
    (the same value, stable for large differences).

    Returns (loss, accuracy, n_pairs): accuracy = fraction of labelled pairs with
    r_w > r_l (strictly, as the official `correct` count), 0 when there is none."""
    mask = pair_mask(r.shape[0], r.device) & (pref != 0)
    margin = (r.unsqueeze(1) - r.unsqueeze(0)) * pref.to(r.dtype)  # r_w - r_l where labelled
    m = margin[mask]
    n = mask.sum()
    loss = -F.logsigmoid(m).sum() / (n + 1e-5)
    acc = (m.detach() > 0).sum() / n.clamp(min=1)
    return loss, acc, n


def level_histogram(level: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Counts of the deciding level over the pairs j < i: [n_levels + 1] int64, entries
    0..n_levels-1 for the levels and the last one for pairs tied at every level."""
    lv = level[pair_mask(level.shape[0], level.device)]
    lv = torch.where(lv < 0, n_levels, lv)
    return torch.bincount(lv, minlength=n_levels + 1)
