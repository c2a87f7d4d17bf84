"""The batched user simulator of the novelty-seeking recommender (OUR READING of spec B §5.5: the
paper's simulator is not public; only its abstract could be read).

B users step at once as torch tensors; one step = one recommended item per user.

    users = draw_users(p.sim, K, n, rng)                     # hidden: nu_u, theta_u; observable: known topics
    sim = UserSim(p.sim, catalogue, session_len, sessions)
    sim.reset(users, groups=[(torch.Generator().manual_seed(s), n)])
    for s in range(sessions):
        sim.start_session()                                  # eps_us AR(1) -> p_us
        for t in range(session_len):
            out = sim.step(items)                            # click, novel, diversity  [B] each
        sim.end_session()

The model, per user u, session s, step t, recommended item i of topic tau_i and quality q_i:

    nu_u ~ Beta(2, 5)                                          static novelty preference (spec)
    eps_u1 ~ N(0, sigma^2),  eps_us = rho eps_u,s-1 + sigma sqrt(1 - rho^2) z     (spec: AR(1), rho, sigma)
    p_us = sigmoid(logit(nu_u) + eps_us)                       session propensity (spec)
    theta_u ~ Dirichlet(alpha)                                 topic interests (spec: sparse Dirichlet)
    n_i = 1[tau_i not yet consumed by u]                       novelty (spec)
    P(click) = sigmoid(bias + a theta_u[tau](1 - n_i) + b q_i + c n_i (p_us - 0.5) - d fatigue_u[tau])  (spec form)
    fatigue_u[tau] = earlier showings of tau in this session   (spec: grows with repeated topics)
    on a click: tau becomes consumed; a clicked novel topic gains interest_gain of interest mass
                (the delayed payoff of exploration, spec B §5.5)

Against RecSim's interest-evolution environment (google-research/recsim,
recsim/environments/interest_evolution.py), which the issue names as the reference:
- follows: users are sampled from a prior, documents carry a topic and a quality, the user's
  response to a document is drawn from a choice model of (interest in the topic, quality), and
  consuming a topic moves the user's interest in it (RecSim's `IEvUserModel.update_state`: a
  clicked document moves the interest towards its topic with probability (interest + 1) / 2,
  else away, by a step that shrinks with |interest|);
- departs: a slate of ONE item and a binary click (RecSim: a slate of k documents, a multinomial
  logit or proportional choice over them with a no-click option, `choice_model.py`); fixed
  sessions of `session_len` steps (RecSim: a time budget the user spends, longer for engaging
  documents); a novelty term in the click model driven by a static and a drifting propensity
  (RecSim has no such user trait: it is what this paper is about); interest grows only on a
  clicked NOVEL topic; quality is visible to the recommender (RecSim's `IEvVideo.create_observation`
  shows the topic features only).

What the recommender observes is kept apart, in `History`: counters of past recommendations,
clicks and the consumed topics (the known ones included), never nu, p or theta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from stages.novelty_rec.params import SimParams

Groups = list  # [(torch.Generator, n_users)]: users of one group draw from their own generator


@dataclass
class Catalogue:
    topic: torch.Tensor    # [I] long
    quality: torch.Tensor  # [I] float
    topics: int

    @property
    def items(self) -> int:
        return int(self.topic.shape[0])


def make_catalogue(sp: SimParams, topics: int, items: int, seed: int) -> Catalogue:
    """`items / topics` items per topic (item i has topic i // per_topic), qualities N(0, quality_std)."""
    rng = np.random.default_rng([seed, 0])
    topic = np.repeat(np.arange(topics), items // topics)
    quality = rng.normal(0.0, sp.quality_std, items)
    return Catalogue(torch.as_tensor(topic), torch.as_tensor(quality, dtype=torch.float32), topics)


@dataclass
class Users:
    nu: np.ndarray      # [B] hidden static novelty preference
    theta: np.ndarray   # [B, K] hidden topic interests
    known: np.ndarray   # [B, K] bool: topics consumed before the first session (observable)

    def __len__(self) -> int:
        return len(self.nu)

    @staticmethod
    def cat(parts: list["Users"]) -> "Users":
        return Users(*(np.concatenate([getattr(u, f) for u in parts]) for f in ("nu", "theta", "known")))

    def repeat(self, times: int) -> "Users":
        return Users.cat([self] * times)


def draw_users(sp: SimParams, topics: int, n: int, rng: np.random.Generator) -> Users:
    nu = rng.beta(sp.nu_beta[0], sp.nu_beta[1], n)
    theta = rng.dirichlet(np.full(topics, sp.interest_alpha), n)
    known = np.zeros((n, topics), dtype=bool)
    top = np.argsort(-theta, axis=1, kind="stable")[:, : sp.known_topics]
    np.put_along_axis(known, top, True, axis=1)
    return Users(nu, theta, known)


class History:
    """What the recommender sees of each user: counters over the lifetime and the session.

    Features (all in [0, 1], built from these counters only):
    long  [B, 2K + 3]: consumed topics, per-topic click rate clicks / (showings + 1), novel-item
                       click rate, share of novel items shown, share of sessions done;
    session [B, K + 7]: this session's fatigue per topic / L, step / L, novel share and novel
                       click rate so far, click rate so far, and the previous session's novel
                       share, novel click rate and click rate (the AR(1) signal of p_us)."""

    def __init__(self, known: torch.Tensor, topic: torch.Tensor, session_len: int, sessions: int):
        B, K = known.shape
        self.topic, self.L, self.S, self.K = topic, session_len, sessions, K
        f = lambda *s: torch.zeros(*s, device=known.device)
        self.consumed = known.clone()
        self.shown, self.clicked = f(B, K), f(B, K)
        self.nov_shown, self.nov_clicked, self.steps = f(B), f(B), f(B)
        self.fatigue = f(B, K)
        self.s_nov_shown, self.s_nov_clicked, self.s_clicks = f(B), f(B), f(B)
        self.prev = f(B, 3)
        self.session, self.t = 0, 0
        self.rows = torch.arange(B, device=known.device)

    def start_session(self) -> None:
        if self.session > 0:
            n = max(self.t, 1)
            self.prev = torch.stack([self.s_nov_shown / n, self.s_nov_clicked / (self.s_nov_shown + 1),
                                     self.s_clicks / n], 1)
        self.fatigue.zero_()
        self.s_nov_shown.zero_(), self.s_nov_clicked.zero_(), self.s_clicks.zero_()
        self.t = 0

    def end_session(self) -> None:
        self.session += 1

    def novel(self, items: torch.Tensor) -> torch.Tensor:
        return ~self.consumed[self.rows, self.topic[items]]

    def record(self, items: torch.Tensor, click: torch.Tensor, novel: torch.Tensor) -> None:
        tau, r, c, n = self.topic[items], self.rows, click.float(), novel.float()
        self.shown[r, tau] += 1
        self.clicked[r, tau] += c
        self.fatigue[r, tau] += 1
        self.nov_shown += n
        self.nov_clicked += n * c
        self.steps += 1
        self.s_nov_shown += n
        self.s_nov_clicked += n * c
        self.s_clicks += c
        self.consumed[r, tau] |= click
        self.t += 1

    def long_features(self) -> torch.Tensor:
        return torch.cat([self.consumed.float(), self.clicked / (self.shown + 1),
                          (self.nov_clicked / (self.nov_shown + 1))[:, None],
                          (self.nov_shown / (self.steps + 1))[:, None],
                          torch.full_like(self.steps[:, None], self.session / self.S)], 1)

    def session_features(self) -> torch.Tensor:
        n = max(self.t, 1)
        now = torch.stack([torch.full_like(self.s_clicks, self.t / self.L), self.s_nov_shown / n,
                           self.s_nov_clicked / (self.s_nov_shown + 1), self.s_clicks / n], 1)
        return torch.cat([self.fatigue / self.L, now, self.prev], 1)

    def item_features(self, quality: torch.Tensor) -> torch.Tensor:
        """[B, I, 3]: is the item novel for the user, its topic's fatigue / L, its quality."""
        novel = (~self.consumed[:, self.topic]).float()
        fat = self.fatigue[:, self.topic] / self.L
        return torch.stack([novel, fat, quality.expand_as(novel)], -1)

    @staticmethod
    def dims(K: int) -> tuple[int, int]:
        return 2 * K + 3, K + 7


class UserSim:
    """B hidden users and the History the recommender sees; see the module docstring."""

    def __init__(self, sp: SimParams, cat: Catalogue, session_len: int, sessions: int, device="cpu"):
        self.sp, self.cat, self.L, self.S = sp, cat, session_len, sessions
        self.device = torch.device(device)
        self.topic, self.quality = cat.topic.to(self.device), cat.quality.to(self.device)

    def reset(self, users: Users, groups: Groups) -> None:
        if sum(n for _, n in groups) != len(users):
            raise ValueError(f"groups cover {sum(n for _, n in groups)} users, expected {len(users)}")
        dev = self.device
        self.groups = groups
        self.B = len(users)
        self.nu = torch.as_tensor(users.nu, dtype=torch.float32, device=dev)
        self.theta = torch.as_tensor(users.theta, dtype=torch.float32, device=dev).clone()
        self.h = History(torch.as_tensor(users.known, device=dev), self.topic, self.L, self.S)
        self.rows = self.h.rows
        self.eps = torch.zeros(self.B, device=dev)
        self.p = self.nu.clone()

    def _draw(self, fn) -> torch.Tensor:
        return torch.cat([fn(n, g) for g, n in self.groups]).to(self.device)

    def start_session(self) -> None:
        sp = self.sp
        z = self._draw(lambda n, g: torch.randn(n, generator=g))
        if self.h.session == 0:
            self.eps = sp.sigma * z
        else:
            self.eps = sp.rho * self.eps + sp.sigma * math.sqrt(1 - sp.rho ** 2) * z
        nu = self.nu.clamp(1e-4, 1 - 1e-4)
        self.p = torch.sigmoid(torch.log(nu) - torch.log1p(-nu) + self.eps)
        self.h.start_session()

    def click_logit(self, items: torch.Tensor) -> torch.Tensor:
        sp, h, r = self.sp, self.h, self.rows
        tau = self.topic[items]
        novel = h.novel(items).float()
        return (sp.click_bias + sp.affinity * self.theta[r, tau] * (1 - novel) + sp.quality * self.quality[items]
                + sp.novelty * novel * (self.p - 0.5) - sp.fatigue * h.fatigue[r, tau])

    def step(self, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """Recommend items [B] (long); returns click, novel (bool) and diversity (float), [B] each.
        diversity = 1 - max cos(item, items shown earlier this session), with topic one-hots as the
        items' vectors: 1 for a topic not yet shown this session, else 0 (our reading)."""
        items = items.to(self.device).long()
        tau = self.topic[items]
        novel = self.h.novel(items)
        logit = self.click_logit(items)
        u = self._draw(lambda n, g: torch.rand(n, generator=g))
        click = u < torch.sigmoid(logit)
        diversity = (self.h.fatigue[self.rows, tau] == 0).float()
        self.theta[self.rows, tau] += self.sp.interest_gain * (click & novel).float()
        self.h.record(items, click, novel)
        return {"click": click, "novel": novel, "diversity": diversity}

    def end_session(self) -> None:
        self.h.end_session()


def behaviour_items(h: History, cat: Catalogue, gen: torch.Generator, explore: float = 0.5) -> torch.Tensor:
    """The logging policy (ours): with probability `explore` a uniformly random item, else a
    random item of a random consumed topic of the user."""
    B, I, K = h.consumed.shape[0], cat.items, cat.topics
    per = I // K
    uniform = torch.randint(I, (B,), generator=gen)
    w = h.consumed.float() + 1e-9
    t = torch.multinomial(w, 1, generator=gen).squeeze(1)
    known = t * per + torch.randint(per, (B,), generator=gen)
    pick = torch.rand(B, generator=gen) < explore
    return torch.where(pick, uniform, known)
