"""Stage novelty_rec_encoders: the long-term user encoder and the session encoder, pretrained on
the logs as parts of a click model (OUR READING of spec B §5.4 step 2: "user/session encoders
trained on logs, next-click prediction").

    python -m stages.novelty_rec.encoders

The logs are replayed through `sim.History` (what a recommender sees), which gives for every
logged recommendation the long-term features, the session features and the item's features;
the model is

    z_long = E_long(long features)            [embed_long]    the user across sessions (static part)
    z_sess = E_sess(session features)         [embed_session] this session so far (dynamic part)
    P(click) = sigmoid(head(z_long, z_sess, topic one-hot, novel, fatigue, quality))

trained with binary cross-entropy (Lightning), 10% of the logged users held out. The RL agents
read z_long and z_sess (frozen) beside the raw features; the greedy-affinity baseline recommends
the item of highest predicted click probability. Spec B §5.3 has a GRU over the session's
interactions: ours encodes the History's counters with an MLP (a smaller model on the same
information, our deviation).

Writes data/novelty_rec/encoders/: encoders.pt (weights, sizes), curve.parquet (step, loss),
metrics.json (held-out log-loss and AUC of the click model, and of a constant).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from torch import nn

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.novelty_rec import common, sim
from stages.novelty_rec.params import NoveltyRecParams, sizes


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out), nn.Tanh())


class ClickModel(nn.Module):
    """E_long, E_sess and the click head (see the module docstring)."""

    def __init__(self, topics: int, embed_long: int, embed_session: int, hidden: int = 64):
        super().__init__()
        d_long, d_sess = sim.History.dims(topics)
        self.topics, self.embed_long, self.embed_session = topics, embed_long, embed_session
        self.long = mlp(d_long, hidden, embed_long)
        self.sess = mlp(d_sess, hidden // 2, embed_session)
        self.head = nn.Sequential(nn.Linear(embed_long + embed_session + topics + 3, hidden), nn.Tanh(),
                                  nn.Linear(hidden, 1))

    def embed(self, long: torch.Tensor, sess: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.long(long), self.sess(sess)

    def logit(self, z_long, z_sess, topic_onehot, item_feats) -> torch.Tensor:
        """z_* [..., d], topic_onehot [..., K], item_feats [..., 3] -> [...]."""
        return self.head(torch.cat([z_long, z_sess, topic_onehot, item_feats], -1)).squeeze(-1)

    def forward(self, long, sess, topic_onehot, item_feats):
        z_l, z_s = self.embed(long, sess)
        return self.logit(z_l, z_s, topic_onehot, item_feats)

    @torch.no_grad()
    def scores(self, h: sim.History, cat: sim.Catalogue) -> torch.Tensor:
        """Predicted click logits of every item for every user now, [B, I]."""
        z_l, z_s = self.embed(h.long_features(), h.session_features())
        # the head's first layer split by input block (the same numbers as `logit` on the
        # concatenation, without building the [B, I, d] input): user part + topic part + item part
        first, rest = self.head[0], self.head[1:]
        d_u = self.embed_long + self.embed_session
        W = first.weight  # [hidden, d_u + K + 3]
        user = torch.cat([z_l, z_s], -1) @ W[:, :d_u].T                     # [B, hidden]
        topic = W[:, d_u:d_u + self.topics].T[cat.topic] + first.bias       # [I, hidden]
        W_item = W[:, d_u + self.topics:].T
        feats = h.item_features(cat.quality)                                # [B, I, 3]
        chunk = 128  # users at a time: a [chunk, I, hidden] activation stays in cache
        return torch.cat([rest(user[i:i + chunk, None] + topic[None] + feats[i:i + chunk] @ W_item).squeeze(-1)
                          for i in range(0, user.shape[0], chunk)])


def replay(logs, users_known: np.ndarray, cat: sim.Catalogue, session_len: int, sessions: int) -> dict:
    """The History features of every logged recommendation (rows in user, session, step order)."""
    U = users_known.shape[0]
    shape = (U, sessions, session_len)
    items = torch.as_tensor(logs["item"].to_numpy().copy().reshape(shape))
    clicks = torch.as_tensor(logs["click"].to_numpy().copy().reshape(shape))
    novel_logged = logs["novel"].to_numpy().reshape(shape)
    h = sim.History(torch.as_tensor(users_known), cat.topic, session_len, sessions)
    out = {"long": [], "sess": [], "item": [], "topic": []}
    for s in range(sessions):
        h.start_session()
        for t in range(session_len):
            it = items[:, s, t]
            novel = h.novel(it)
            if not np.array_equal(novel.numpy(), novel_logged[:, s, t]):
                raise RuntimeError(f"replay of the logs disagrees with the simulator's novelty at session {s} step {t}")
            out["long"].append(h.long_features())
            out["sess"].append(h.session_features())
            out["item"].append(h.item_features(cat.quality)[h.rows, it])
            out["topic"].append(cat.topic[it])
            h.record(it, clicks[:, s, t], novel)
        h.end_session()
    # [S*L, U, d] -> rows in (user, session, step) order
    stack = lambda xs: torch.stack(xs, 1).reshape(U * sessions * session_len, *xs[0].shape[1:])
    feats = {k: stack(v) for k, v in out.items()}
    feats["click"] = clicks.reshape(-1).float()
    return feats


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (the rank statistic; ties get average ranks)."""
    from scipy.stats import rankdata

    r = rankdata(s)
    pos = y.astype(bool)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / max(n1 * n0, 1))


def load_fresh(p: NoveltyRecParams) -> ClickModel:
    """An untrained click model of the params' sizes (benchmarks: the same cost as a trained one)."""
    m = ClickModel(sizes(p).topics, p.agent.embed_long, p.agent.embed_session).eval()
    for q in m.parameters():
        q.requires_grad_(False)
    return m


def load(path=common.ENC_DIR / "encoders.pt") -> ClickModel:
    blob = torch.load(path, weights_only=True)
    m = ClickModel(**blob["sizes"])
    m.load_state_dict(blob["state"])
    m.eval()
    for q in m.parameters():
        q.requires_grad_(False)
    return m


def body(ctx: Stage) -> None:
    """Pretrain the encoders as a click model on the logs."""
    import polars as pl
    import pytorch_lightning as L

    from hrlzoo.pipeline.lightning import make_trainer

    p: NoveltyRecParams = ctx.params
    s = sizes(p)
    logs = pl.read_parquet(common.SIM_DIR / "logs.parquet").sort("user", "session", "step")
    users = pl.read_parquet(common.SIM_DIR / "users.parquet").sort("user")
    known = np.array(users["known"].to_list(), dtype=bool)
    cat = common.catalogue(p)
    f = replay(logs, known, cat, s.session_len, s.sessions)
    onehot = nn.functional.one_hot(f["topic"], s.topics).float()
    per_user = s.sessions * s.session_len
    U = known.shape[0]
    held = np.random.default_rng([p.log_seed, 9]).permutation(U)[: max(1, U // 10)]
    test_mask = np.zeros(U * per_user, dtype=bool)
    for u in held:
        test_mask[u * per_user:(u + 1) * per_user] = True
    tr = torch.as_tensor(~test_mask)
    te = torch.as_tensor(test_mask)
    cols = (f["long"], f["sess"], onehot, f["item"], f["click"])
    train_set = torch.utils.data.TensorDataset(*(c[tr] for c in cols))
    torch.manual_seed(p.log_seed)
    model = ClickModel(s.topics, p.agent.embed_long, p.agent.embed_session)
    curve = []

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, i):
            *x, y = batch
            loss = nn.functional.binary_cross_entropy_with_logits(self.model(*x), y)
            v = ctx.guard("click-model loss", loss.item(), self.global_step)
            curve.append({"step": int(self.global_step), "loss": v})
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.model.parameters(), lr=p.encoder.lr)

    loader = torch.utils.data.DataLoader(train_set, batch_size=p.encoder.batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(p.log_seed))
    trainer = make_trainer(ctx.device, max_epochs=s.encoder_epochs, progress=sys.stderr.isatty(), deterministic=True)
    trainer.fit(Module(), loader)
    model.eval()
    with torch.no_grad():
        logit = model(*(c[te] for c in cols[:4])).numpy()
    y = f["click"][te].numpy()
    prob = 1 / (1 + np.exp(-logit))
    eps = 1e-7
    ll = float(-np.mean(y * np.log(prob + eps) + (1 - y) * np.log(1 - prob + eps)))
    base = float(y.mean())
    ll0 = float(-np.mean(y * np.log(base + eps) + (1 - y) * np.log(1 - base + eps)))
    metrics = {"heldout_users": int(len(held)), "heldout_logloss": ll, "constant_logloss": ll0,
               "heldout_auc": auc(y, logit), "train_steps": len(curve)}
    out = ctx.out(common.ENC_DIR)
    out.mkdir(parents=True)
    torch.save({"state": model.state_dict(), "sizes": {"topics": s.topics, "embed_long": p.agent.embed_long,
                                                       "embed_session": p.agent.embed_session}}, out / "encoders.pt")
    pl.DataFrame(curve).write_parquet(out / "curve.parquet")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    ctx.log(f"click model on held-out users: log-loss {ll:.4f} (constant {ll0:.4f}), AUC {metrics['heldout_auc']:.3f}")


def main(argv: list[str] | None = None) -> int:
    return run_stage("novelty_rec_encoders", "novelty_rec", NoveltyRecParams, body, argv,
                     outputs=lambda a, p: [str(common.ENC_DIR)])


if __name__ == "__main__":
    sys.exit(main())
