"""Stage hamnet_pretrain: CORN's contact-based representation, pretrained on generated scenes.

    python -m stages.hamnet.contact

Data (CORN `pkm/scripts/pretrain/gen_col/gen_col.py` samples object poses and gripper poses near
them and labels contacts geometrically; here in 2-D): a scene of the training split, the object at
its start pose or (share `near_wall`) next to a random point of the static geometry, any yaw; the
hand on the object's surface (share `near_hand`: an outline point pushed out by the hand radius
+ U(-eps, 2 eps)) or anywhere within 0.15 m. Labels per patch (`model_col.py`: `any` over the
patch's points): an object patch touches the hand (point within hand radius + eps of the hand
centre); an environment patch touches the object (point within eps of the object). Inputs are
exactly the policy's: the observation's object cloud, environment cloud and hand state.

Training: the S-member encoder (one per seed, `stages/hamnet/nets.py`) with both BCE heads,
Lightning (`hrlzoo.pipeline.lightning.make_trainer`), each member its own init and batch order.
Test: AUROC of each head per seed, on fresh scenes of the training split and of the held-out
shape split. Writes data/hamnet/encoder/: encoder.pt (encoder weights, all seeds), metrics.json,
curve.parquet.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hamnet.params import HAMNetParams, sizes

OUT = Path("data/hamnet/encoder")


def contact_sample(cfg, split: str, rng: np.random.Generator, near_hand: float, near_wall: float, eps: float):
    """One pretraining sample: (object cloud [K, 2], env cloud [Ke, 2], hand state [4], object-patch
    labels per point [K], env labels per point [Ke]); clouds in the observation's frame and units."""
    from hrlzoo.envs.pushing import _rot, distance_to_parts, generate_layout, nearest_env_points

    lay = generate_layout(cfg, split, rng)
    r_obj = max(float(np.linalg.norm(p, axis=1).max()) for p in lay.parts)
    pose = lay.start.copy()
    pose[2] = rng.uniform(-math.pi, math.pi)
    if rng.uniform() < near_wall:
        e = lay.env_points[int(rng.integers(len(lay.env_points)))]
        ang = rng.uniform(-math.pi, math.pi)
        pose[:2] = e + rng.uniform(0.3 * r_obj, r_obj + 0.01) * np.array([math.cos(ang), math.sin(ang)])
    R = _rot(pose[2])
    outline = lay.cloud @ R.T + pose[:2]               # world frame
    if rng.uniform() < near_hand:
        k = int(rng.integers(len(outline)))
        out = outline[k] - pose[:2]
        hand = outline[k] + out / (np.linalg.norm(out) + 1e-9) * (cfg.pusher_radius + rng.uniform(-eps, 2 * eps))
    else:
        ang = rng.uniform(-math.pi, math.pi)
        hand = pose[:2] + rng.uniform(0.0, 0.15) * np.array([math.cos(ang), math.sin(ang)])
    y_obj = np.linalg.norm(outline - hand, axis=1) < cfg.pusher_radius + eps
    env = nearest_env_points(lay.env_points, pose[:2], cfg.n_env_points)      # relative, metres
    y_env = distance_to_parts(lay.parts, pose, env + pose[:2]) < eps
    cs = cfg.cloud_scale
    hand_state = np.array([*(hand - pose[:2]) / cs, *rng.uniform(-1, 1, 2)])
    return (lay.cloud @ R.T) / cs, env / cs, hand_state, y_obj, y_env


def make_data(cfg, split: str, n: int, seed0: int, pp) -> dict:
    """n samples of `split`, sample j drawn from default_rng([seed0, j])."""
    rows = [contact_sample(cfg, split, np.random.default_rng([seed0, j]), pp.near_hand, pp.near_wall, pp.contact_eps)
            for j in range(n)]
    return {k: np.stack([r[i] for r in rows]).astype(np.float32 if i < 3 else bool)
            for i, k in enumerate(("obj", "env", "hand", "y_obj", "y_env"))}


def patch_labels(y: np.ndarray, patch: int) -> np.ndarray:
    """Per-point labels [..., K] -> per-patch 'any' [..., K / patch] (model_col.py)."""
    return y.reshape(*y.shape[:-1], -1, patch).any(-1)


def auroc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); nan if one class is absent."""
    from scipy.stats import rankdata

    label = label.astype(bool).ravel()
    score = score.ravel()
    n1, n0 = int(label.sum()), int((~label).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _module(p: HAMNetParams, S: int, gens):
    import pytorch_lightning as pl
    import torch

    from stages.hamnet.nets import ContactHeads, PatchEncoder

    e = p.encoder

    class ContactModel(pl.LightningModule):
        def __init__(self, data: dict, order: torch.Tensor):
            super().__init__()
            self.encoder = PatchEncoder(S, e.patch, e.dim, e.layers, e.heads, gens=gens)
            self.heads = ContactHeads(S, e.dim, gens=gens)
            self.data, self.order = data, order
            self.curve: list[dict] = []
            self.guard = None

        def logits(self, obj, env, hand):
            z = self.encoder(obj, env, hand)
            return self.heads(z, obj.shape[2] // e.patch)

        def training_step(self, batch, i):
            idx = self.order[int(batch[0])]                        # [S, B]: member s's own batch
            g = lambda k: self.data[k][idx]
            lh, le = self.logits(g("obj"), g("env"), g("hand"))
            bce = torch.nn.functional.binary_cross_entropy_with_logits
            l_h = bce(lh, g("y_obj").float(), reduction="none").mean((1, 2))
            l_e = bce(le, g("y_env").float(), reduction="none").mean((1, 2))
            loss = (l_h + l_e).sum()                               # CORN: loss_c_h + loss_c_e, per member
            self.guard("contact loss", float(loss.detach()), self.global_step)
            if self.global_step % 50 == 0:
                self.curve.append({"step": self.global_step, "loss_hand": float(l_h.mean().detach()), "loss_env": float(l_e.mean().detach())})
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=p.pretrain.lr)

    return ContactModel


def body(ctx: Stage) -> None:
    import polars as pl
    import torch

    from hrlzoo.pipeline.lightning import make_trainer

    p: HAMNetParams = ctx.params
    sz, cfg, e = sizes(p), p.env.config(), p.encoder
    S = len(p.seeds)
    out = ctx.out(OUT)
    out.mkdir(parents=True)
    ctx.log(f"generating {sz.pretrain_samples} contact samples")
    train = make_data(cfg, "train", sz.pretrain_samples, p.pretrain_seed, p.pretrain)
    data = {k: torch.as_tensor(patch_labels(v, e.patch) if k.startswith("y") else v) for k, v in train.items()}
    gens = [torch.Generator().manual_seed(int(s)) for s in p.seeds]
    n, B = sz.pretrain_samples, sz.pretrain_batch
    order = torch.stack([torch.stack([torch.randint(n, (B,), generator=g) for g in gens])
                         for _ in range(sz.pretrain_steps)])          # [steps, S, B]
    model = _module(p, S, gens)(data, order)
    model.guard = ctx.guard
    steps = torch.utils.data.TensorDataset(torch.arange(sz.pretrain_steps))
    loader = torch.utils.data.DataLoader(steps, batch_size=None, shuffle=False)
    make_trainer("cpu", max_steps=sz.pretrain_steps, progress=True, gradient_clip_val=1.0).fit(model, loader)
    model.eval()
    metrics = {"samples": n, "steps": sz.pretrain_steps, "seeds": list(p.seeds)}
    for split in ("train", "heldout_shape"):
        test = make_data(cfg, split, sz.pretrain_test, p.pretrain_seed + 10_000_000 + 1_000_000 * (split != "train"),
                         p.pretrain)
        with torch.no_grad():
            t = lambda k: torch.as_tensor(test[k]).unsqueeze(0).expand(S, *test[k].shape)
            lh, le = model.logits(t("obj"), t("env"), t("hand"))
        yh, ye = patch_labels(test["y_obj"], e.patch), patch_labels(test["y_env"], e.patch)
        metrics[split] = {"auroc_hand": [auroc(lh[s].numpy(), yh) for s in range(S)],
                          "auroc_env": [auroc(le[s].numpy(), ye) for s in range(S)],
                          "positive_rate_hand": float(yh.mean()), "positive_rate_env": float(ye.mean())}
        ctx.log(f"{split}: AUROC hand {np.mean(metrics[split]['auroc_hand']):.3f}, env {np.mean(metrics[split]['auroc_env']):.3f}")
    torch.save({"encoder": model.encoder.state_dict(), "seeds": list(p.seeds),
                "config": {"patch": e.patch, "dim": e.dim, "layers": e.layers, "heads": e.heads}}, out / "encoder.pt")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    pl.DataFrame(model.curve).write_parquet(out / "curve.parquet")


def main(argv: list[str] | None = None) -> int:
    return run_stage("hamnet_pretrain", "hamnet", HAMNetParams, body, argv, outputs=lambda a, p: [str(OUT)])


if __name__ == "__main__":
    sys.exit(main())
