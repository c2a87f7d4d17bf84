"""HBPO's evaluation protocol: one model on the held-out test problems of every level, in natural
mode and with each forced budget token (used by `stages.hbpo.rl`, which evaluates what it trains,
and by its `base` pseudo-method, which evaluates the SFT base).

Modes (paper §4 "Evaluation Protocol"; sampling at temperature 0.6, top-p 0.95, one completion
per problem):
- natural: the prompt ends at `<think>`; the model decides everything, a budget token included
  (the paper's "natural reasoning");
- b<N>: budget token N forced after `<think>` (the paper's efficiency prompting with "minimal
  tokens" becomes the smallest budget: a tiny model reads no instruction), for the methods of
  `eval.forced_budget_methods`, with every budget of the `hbpo` method.
The base is one model: its "seed" is the sampling seed of the evaluation (the same seeds as the
methods'), so its spread is the sampling noise only.

Rows: method, seed, mode, level, correct, n_tokens, style, self_budget (the budget token a
natural-mode completion starts with, 0 = none), finished.
"""

from __future__ import annotations

from stages.hbpo import common
from stages.hbpo.params import HBPOParams, sizes


def forced_budgets(p: HBPOParams) -> list[int]:
    """The budgets evaluation forces: HBPO's four (else every budget any method uses)."""
    from stages.hbpo.params import all_budgets

    return list(p.methods["hbpo"].budgets) if "hbpo" in p.methods else all_budgets(p)


def modes(p: HBPOParams, method: str) -> list[tuple[str, int | None]]:
    forced = [(f"b{b}", b) for b in forced_budgets(p)] if method in sizes(p).eval.forced_budget_methods else []
    return [("natural", None)] + forced


def evaluate_run(p: HBPOParams, model, tok, method: str, seed: int, problems) -> list[dict]:
    """Every mode of `method` for one model; the sampling seed depends on the run's seed and the mode."""
    e = sizes(p).eval
    rows = []
    was_training = model.training
    model.eval()
    for i, (mode, budget) in enumerate(modes(p, method)):
        got = common.evaluate_model(model, tok, problems, budget=budget,
                                    seed=(seed * 100 + i) * 10 + common.SALT["eval"],
                                    max_new_tokens=e.max_new_tokens, temperature=e.temperature, top_p=e.top_p)
        rows += [{"method": method, "seed": seed, "mode": mode, **r} for r in got]
    model.train(was_training)
    return rows
