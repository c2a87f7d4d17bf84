"""Value diagnostics: does a value order states the way the true (BFS) distance does?

- `path_values`: V(s_i, g) along the noiseless oracle path of each evaluation task, beside the
  true distance (steps left on the path), for the value-vs-distance plots.
- `order_consistency`: over every pair i < j of path states (every `stride`-th state), the
  fraction with V(s_j, g) > V(s_i, g): a later state on the shortest path is closer to the goal,
  so a consistent value ranks it higher. 1.0 is perfect, 0.5 is chance.
- `advantage_sign_accuracy`: on the high actor's own training triples (s_t, s_{t+k}, g) from
  the dataset, the fraction where sign(V(s_{t+k}, g) - V(s_t, g)) equals the sign of the drop in
  BFS cell distance to g; triples whose cell distance does not change are left out. This is
  the sign of HIQL's (or OTA's) high-level advantage, so it is exactly what AWR weights by.
"""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def values(value, s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Mean of the twin heads for every seed: s, g [B, d] (shared by seeds) -> [S, B]."""
    S = value.seeds
    st = torch.as_tensor(s, dtype=torch.float32).expand(S, *s.shape)
    gt = torch.as_tensor(g, dtype=torch.float32).expand(S, *g.shape)
    return value(st.contiguous(), gt.contiguous()).mean(1).numpy()


def order_consistency(v: np.ndarray, stride: int = 5) -> np.ndarray:
    """v [S, L] along a path (start to goal) -> [S] fraction of ordered pairs i < j with v_j > v_i."""
    x = v[:, ::stride]
    i, j = np.triu_indices(x.shape[1], k=1)
    return (x[:, j] > x[:, i]).mean(-1)


def advantage_sign_accuracy(value, s: np.ndarray, w: np.ndarray, g: np.ndarray,
                            d_s: np.ndarray, d_w: np.ndarray) -> np.ndarray:
    """[S] accuracy of sign(V(w, g) - V(s, g)) against sign(d_s - d_w), where d_w != d_s."""
    keep = d_s != d_w
    adv = values(value, w[keep], g[keep]) - values(value, s[keep], g[keep])
    truth = np.sign(d_s[keep] - d_w[keep])
    return (np.sign(adv) == truth).mean(-1)


def sign_triples(data, geo, rng: np.random.Generator, n: int, subgoal_steps: int):
    """n high-actor training triples (s_t, s_{t+k} capped at the goal, g uniform future) with the
    BFS cell distances of s_t and s_{t+k} to g."""
    from hrlzoo.gcrl.dataset import high_actor_batch

    b = high_actor_batch(data, rng, n, subgoal_steps, p_rand=0.0, geom=False, discount=0.99)
    d_s = geo.cell_distance(b["observations"], b["goals"])
    d_w = geo.cell_distance(b["targets"], b["goals"])
    return b["observations"], b["targets"], b["goals"], d_s, d_w
