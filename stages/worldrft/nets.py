"""WorldRFT's networks: the world encoder and latent world model, and the two planners.

    enc = WorldEncoder(dims)                        # raster -> 8x8 latent tokens + a 16x16 local map
    wm = WorldModel(dims, horizon)                  # encoder + geometry decoder + latent transition
    planner = make_planner("hpd_lir", dims, ...)    # or "global"; owns its own WorldEncoder

Shapes: rasters (B, C, 64, 64) float in {0, 1}; tokens (B, N = 8x8, D); the local map
(B, c_local, 16, 16); plans (B, T, 2) metres in the ego frame (x forward, y left).

What stands for what in the paper (Yang et al., arXiv 2512.19133; official code unreleased, so
every layer below is our reading of its description):
- Spatial-aware World Encoder (SWE): the paper encodes surround-view images with a backbone
  and fuses them with frozen VGGT 3D tokens by cross-attention. We encode the bird's-eye
  raster with a small CNN and a transformer layer into latent tokens, and make them
  geometry-aware with an auxiliary decoder (`GeometryDecoder`) that must recover semantic maps
  (vehicles, closures, drivable area, lane lines, route) and a distance field from them
  (method.geometry_targets).
- Latent world model: `LatentTransition` predicts the latent tokens k frames later from the
  current tokens and the ego plan (LAW-style temporal self-supervision).
- Hierarchical planning decomposition (HPD): first an intention (one of K anchor manoeuvres,
  classified), then waypoints conditioned on that intention (a residual on the anchor).
- Local-aware iterative refinement (LIR): `rounds` times, features are gathered by bilinear
  `grid_sample` around the current waypoints and an offset is predicted for each waypoint.
- The baseline `GlobalPlanner` decodes all waypoints from one global ego query.
Both planners predict on top of the constant-velocity trajectory (x = v t, y = 0), so the
comparison isolates the heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hrlzoo.envs.driving.config import RasterConfig

N_COMMANDS = 3
EGO_SCALE = (20.0, 4.0, 0.5, 0.2)  # speed, acceleration, yaw rate, steering: divided by these


@dataclass(frozen=True)
class Dims:
    """Network widths (params: `nets`)."""

    channels: int = 8          # raster channels
    local: int = 32            # channels of the 16x16 local map (LIR reads it)
    latent: int = 64           # D: width of the latent tokens
    heads: int = 4             # attention heads
    ff: int = 128              # feed-forward width of transformer layers


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class WorldEncoder(nn.Module):
    """Raster -> (tokens (B, 64, D), local map (B, c_local, 16, 16)). The SWE stand-in."""

    def __init__(self, d: Dims):
        super().__init__()
        self.stem = nn.Conv2d(d.channels, d.local, 4, stride=4)       # 64 -> 16: one cell = 6 m
        self.local_block = nn.Conv2d(d.local, d.local, 3, padding=1)
        self.down = nn.Conv2d(d.local, d.latent, 3, stride=2, padding=1)  # 16 -> 8
        self.block = nn.Conv2d(d.latent, d.latent, 3, padding=1)
        self.pos = nn.Parameter(torch.zeros(1, 64, d.latent))
        self.mix = nn.TransformerEncoderLayer(d.latent, d.heads, d.ff, dropout=0.0, batch_first=True,
                                              norm_first=True, activation="gelu")
        self.norm = nn.LayerNorm(d.latent)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, raster: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.gelu(self.stem(raster))
        local = x + F.gelu(self.local_block(x))
        y = F.gelu(self.down(local))
        y = y + F.gelu(self.block(y))
        tokens = y.flatten(2).transpose(1, 2) + self.pos
        return self.norm(self.mix(tokens)), local


def token_map(tokens: torch.Tensor) -> torch.Tensor:
    """(B, N, D) tokens of a square grid -> (B, D, s, s)."""
    b, n, d = tokens.shape
    s = int(round(n ** 0.5))
    return tokens.transpose(1, 2).reshape(b, d, s, s)


class GeometryDecoder(nn.Module):
    """Latent tokens -> the 6 maps of method.geometry_targets at 32x32 (5 semantic logits and
    the distance field): the stand-in for the paper's semantic (L_sem) and VGGT supervision."""

    def __init__(self, d: Dims, maps: int = 6):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(d.latent, 32, 2, stride=2)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.out = nn.Conv2d(16, maps, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.up1(token_map(tokens)))
        return self.out(F.gelu(self.up2(x)))


class PlanEncoder(nn.Module):
    """A plan (B, T, 2) metres -> one token (B, 1, D)."""

    def __init__(self, d: Dims, horizon: int):
        super().__init__()
        self.net = mlp(2 * horizon, d.ff, d.latent)
        self.scale = torch.tensor([30.0, 3.0])

    def forward(self, plan: torch.Tensor) -> torch.Tensor:
        return self.net((plan / self.scale.to(plan)).flatten(1))[:, None]


class LatentTransition(nn.Module):
    """(tokens_t, plan) -> predicted tokens_{t+k}: the latent world model's dynamics."""

    def __init__(self, d: Dims, horizon: int, layers: int = 2):
        super().__init__()
        self.plan = PlanEncoder(d, horizon)
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(d.latent, d.heads, d.ff, dropout=0.0, batch_first=True,
                                                               norm_first=True, activation="gelu")
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(d.latent)

    def forward(self, tokens: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.plan(plan), tokens], 1)
        for layer in self.layers:
            x = layer(x)
        return self.norm(tokens + x[:, 1:])


class WorldModel(nn.Module):
    """Encoder + geometry decoder + latent transition, trained together (world_model stage)."""

    def __init__(self, d: Dims, horizon: int):
        super().__init__()
        self.encoder = WorldEncoder(d)
        self.geometry = GeometryDecoder(d)
        self.transition = LatentTransition(d, horizon)


# ------------------------------------------------------------------ planners
class EgoQuery(nn.Module):
    """The ego query from the ego state (speed, acceleration, yaw rate, steering) and the
    navigation command."""

    def __init__(self, d: Dims):
        super().__init__()
        self.net = mlp(4 + N_COMMANDS, d.ff, d.latent)
        self.register_buffer("scale", torch.tensor(EGO_SCALE))

    def forward(self, ego_state: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
        x = torch.cat([ego_state / self.scale, F.one_hot(command.long(), N_COMMANDS).to(ego_state)], -1)
        return self.net(x)[:, None]  # (B, 1, D)


class QueryBlock(nn.Module):
    """Queries attend to the latent tokens, then a feed-forward layer (pre-norm residuals)."""

    def __init__(self, d: Dims):
        super().__init__()
        self.nq, self.nk = nn.LayerNorm(d.latent), nn.LayerNorm(d.latent)
        self.attn = nn.MultiheadAttention(d.latent, d.heads, batch_first=True)
        self.nf = nn.LayerNorm(d.latent)
        self.ff = mlp(d.latent, d.ff, d.latent)

    def forward(self, q: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        k = self.nk(tokens)
        q = q + self.attn(self.nq(q), k, k, need_weights=False)[0]
        return q + self.ff(self.nf(q))


def constant_velocity(ego_state: torch.Tensor, horizon: int, dt: float) -> torch.Tensor:
    """(B, T, 2): straight ahead at the current speed, the base every planner adds to."""
    t = dt * torch.arange(1, horizon + 1, dtype=ego_state.dtype, device=ego_state.device)
    x = ego_state[:, :1] * t
    return torch.stack([x, torch.zeros_like(x)], -1)


def waypoint_grid(plan: torch.Tensor, rc: RasterConfig) -> torch.Tensor:
    """Ego-frame points (..., 2) metres -> grid_sample coordinates (..., 2) in [-1, 1]
    (x = image column, y = image row, align_corners=False): the raster's pixel (r, c) has its
    centre at x = (ego_row - r) res, y = (size // 2 - c) res (hrlzoo.envs.driving.raster), and
    in normalised coordinates a pixel centre c sits at (2 c + 1) / size - 1 whatever the
    resolution of the feature map sampled, so one grid serves the 16x16 and the 8x8 maps."""
    row = rc.ego_row - plan[..., 0] / rc.resolution
    col = rc.size // 2 - plan[..., 1] / rc.resolution
    return torch.stack([(2 * col + 1) / rc.size - 1, (2 * row + 1) / rc.size - 1], -1)


def gather_local(maps: list[torch.Tensor], points: torch.Tensor, rc: RasterConfig) -> torch.Tensor:
    """Bilinear features (B, P, sum of channels) of feature maps (B, C_i, H_i, W_i) at ego-frame
    points (B, P, 2): LIR's local feature gathering. Points off the map take the border value."""
    grid = waypoint_grid(points, rc)[:, :, None, :]  # (B, P, 1, 2)
    feats = [F.grid_sample(m, grid.to(m.dtype), mode="bilinear", padding_mode="border", align_corners=False)
             for m in maps]  # each (B, C_i, P, 1)
    return torch.cat(feats, 1)[..., 0].transpose(1, 2)


class GlobalPlanner(nn.Module):
    """Baseline: one global ego query attends to the latent tokens; all waypoints from it."""

    kind = "global"
    rft_frozen = ("encoder",)  # what GRPO fine-tuning leaves as it is

    def __init__(self, d: Dims, horizon: int, dt: float, rc: RasterConfig, layers: int = 2):
        super().__init__()
        self.horizon, self.dt, self.rc = horizon, dt, rc
        self.encoder = WorldEncoder(d)
        self.query = EgoQuery(d)
        self.blocks = nn.ModuleList(QueryBlock(d) for _ in range(layers))
        self.head = nn.Linear(d.latent, 2 * horizon)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def heads(self, features, ego_state, command) -> dict:
        """Everything after the encoder: {"plan": (B, T, 2), "stages": [plans supervised]}."""
        tokens, _ = features
        q = self.query(ego_state, command)
        for blk in self.blocks:
            q = blk(q, tokens)
        plan = constant_velocity(ego_state, self.horizon, self.dt) + self.head(q[:, 0]).view(-1, self.horizon, 2)
        return {"plan": plan, "stages": [plan]}

    def forward(self, raster, ego_state, command) -> dict:
        return self.heads(self.encoder(raster), ego_state, command)


class HPDLIRPlanner(nn.Module):
    """Hierarchical planning decomposition + local-aware iterative refinement.

    HPD: an intention query classifies the manoeuvre among K anchors (anchor trajectories
    relative to constant velocity, k-means of the expert's); a waypoint query, conditioned on
    the chosen anchor's embedding, regresses the residual on it. Training conditions on the
    target anchor (teacher forcing), inference on the argmax.
    LIR: `rounds` times, features are gathered around every current waypoint (at the waypoint
    and `offsets` around it) from the 16x16 local map and the 8x8 token map; with the waypoint
    query, the waypoint's own position and time, and one self-attention layer across the T
    waypoints, they give an offset per waypoint. The sampling positions are detached
    (as deformable-attention refinement does), so each round learns its own correction.
    """

    kind = "hpd_lir"
    # GRPO fine-tunes the waypoints given the imitation's intention: the world model and HPD's
    # level 1 stay as imitation left them, so the intention (an argmax) cannot flip under RFT
    rft_frozen = ("encoder", "query", "intent_block", "intent_head")

    def __init__(self, d: Dims, horizon: int, dt: float, rc: RasterConfig, anchors: torch.Tensor, rounds: int = 2,
                 offsets=((0.0, 0.0), (3.0, 0.0), (-3.0, 0.0), (0.0, 1.5), (0.0, -1.5))):
        super().__init__()
        self.horizon, self.dt, self.rc, self.rounds = horizon, dt, rc, rounds
        self.register_buffer("anchors", anchors.float().clone())  # (K, T, 2)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.float32))  # (P, 2)
        K = anchors.shape[0]
        self.encoder = WorldEncoder(d)
        self.query = EgoQuery(d)
        self.intent_block = QueryBlock(d)
        self.intent_head = nn.Linear(d.latent, K)
        self.anchor_embed = nn.Embedding(K, d.latent)
        self.wp_block = QueryBlock(d)
        self.residual = nn.Linear(d.latent, 2 * horizon)
        nn.init.zeros_(self.residual.weight)
        nn.init.zeros_(self.residual.bias)
        local_in = len(offsets) * (d.local + d.latent) + d.latent + 3
        self.refine_in = nn.ModuleList(mlp(local_in, d.ff, d.latent) for _ in range(rounds))
        self.refine_mix = nn.ModuleList(nn.TransformerEncoderLayer(d.latent, d.heads, d.ff, dropout=0.0,
                                                                   batch_first=True, norm_first=True,
                                                                   activation="gelu") for _ in range(rounds))
        self.refine_out = nn.ModuleList(nn.Linear(d.latent, 2) for _ in range(rounds))
        for lin in self.refine_out:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def heads(self, features, ego_state, command, target_anchor: torch.Tensor | None = None) -> dict:
        tokens, local = features
        B, T = ego_state.shape[0], self.horizon
        q = self.intent_block(self.query(ego_state, command), tokens)
        logits = self.intent_head(q[:, 0])  # (B, K): HPD level 1, the intention
        k = logits.argmax(-1) if target_anchor is None else target_anchor
        qw = self.wp_block(q + self.anchor_embed(k)[:, None], tokens)  # level 2, conditioned on it
        base = constant_velocity(ego_state, T, self.dt)
        plan = base + self.anchors[k] + self.residual(qw[:, 0]).view(B, T, 2)
        stages = [plan]
        tmap = token_map(tokens)
        t_feat = (torch.arange(1, T + 1, dtype=plan.dtype, device=plan.device) / T).expand(B, T)[..., None]
        P = self.offsets.shape[0]
        for r in range(self.rounds):  # LIR
            ref = plan.detach()
            pts = (ref[:, :, None, :] + self.offsets).reshape(B, T * P, 2)
            feat = gather_local([local, tmap], pts, self.rc).reshape(B, T, -1)
            x = torch.cat([feat, qw.expand(B, T, -1), ref / 30.0, t_feat], -1)
            h = self.refine_mix[r](self.refine_in[r](x))
            plan = plan + self.refine_out[r](h)
            stages.append(plan)
        return {"plan": plan, "stages": stages, "intent_logits": logits, "intent": k}

    def forward(self, raster, ego_state, command, target_anchor=None) -> dict:
        return self.heads(self.encoder(raster), ego_state, command, target_anchor)


PLANNER_KINDS = {"global": GlobalPlanner, "hpd_lir": HPDLIRPlanner}


def make_planner(kind: str, d: Dims, horizon: int, dt: float, rc: RasterConfig, anchors=None, rounds: int = 2,
                 layers: int = 2) -> nn.Module:
    if kind == "global":
        return GlobalPlanner(d, horizon, dt, rc, layers=layers)
    if kind == "hpd_lir":
        return HPDLIRPlanner(d, horizon, dt, rc, anchors, rounds=rounds)
    raise ValueError(f"unknown planner kind {kind!r} (expected one of {', '.join(PLANNER_KINDS)})")
