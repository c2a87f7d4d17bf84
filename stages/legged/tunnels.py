"""Procedural 3-D tunnels: a floor and a ceiling height map on a grid (spec B §7.4).

The official tunnels (go1_gym/utils/tunnel_fn.py, tunnel.py of Daffan/legged_tracking) are two
height fields, floor and ceiling (0.8 m above a Go1), with random blocks and pyramids. Ours keep
that two-layer form, on a `res` (5 cm) grid, and place obstacles of four kinds, one kind per
difficulty level, named after the skill it asks for:

    plain   climbable floor blocks (<= 8 cm, under the step limit) and pillars that leave a
            detour: walking and steering suffice;
    crouch  low ceiling beams across the tunnel: the body must lower (h < beam height);
    side    two walls with narrow slots offset sideways, a 0.5 m pocket between them:
            the body must side-step in the pocket (or turn in it);
    tilt    a slanted slot: floor and ceiling both slope across the tunnel in a narrow band,
            their vertical gap too small for a level body but not for one rolled to the slope.

Cells outside the tunnel and inside walls are solid: floor SOLID_FLOOR above, ceiling
SOLID_CEIL below, so `ceil < floor` marks them and the height maps read "no clearance" there.
World coordinates: x along the tunnel from 0 (start side), y across it (0 = centre line); the map
covers x in [-pad, length + pad], y in [-width / 2 - pad, width / 2 + pad]. Every tunnel of a bank
shares one map size (the longest tunnel's), so a bank is one [M, NX, NY] tensor pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("plain", "crouch", "side", "tilt")
SOLID_FLOOR = 1.0
SOLID_CEIL = -1.0


@dataclass(frozen=True)
class Geometry:
    """Sizes shared by the generator, the body and the planner (params `tunnel`)."""

    res: float = 0.05          # grid cell (m)
    width: float = 1.0         # tunnel width (m)
    ceiling: float = 0.5       # free ceiling height (m) away from obstacles
    pad: float = 1.0           # solid margin around the tunnel in the map (m): the height maps look 1 m ahead
    start_x: float = 0.4       # start position of the body centre (m)
    spacing: float = 1.2       # distance between obstacles (m)


def map_shape(geo: Geometry, max_length: float) -> tuple[int, int]:
    nx = int(round((max_length + 2 * geo.pad) / geo.res))
    ny = int(round((geo.width + 2 * geo.pad) / geo.res))
    return nx, ny


def make_tunnel(kind: str, distance: float, geo: Geometry, max_length: float, rng: np.random.Generator):
    """One tunnel: (floor [NX, NY], ceil [NX, NY], goal_x). The goal is `distance` past the start."""
    nx, ny = map_shape(geo, max_length)
    xs = (np.arange(nx) + 0.5) * geo.res - geo.pad
    ys = (np.arange(ny) + 0.5) * geo.res - geo.pad - geo.width / 2
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    length = geo.start_x + distance + 0.5
    floor = np.zeros((nx, ny))
    ceil = np.full((nx, ny), geo.ceiling)
    solid = (X < 0) | (X > length) | (np.abs(Y) > geo.width / 2)
    half = geo.width / 2
    x = geo.start_x + 0.6
    while x < geo.start_x + distance - 0.4:
        # clutter of every tunnel: one climbable floor block (official random blocks)
        bx, by = x + 0.5 + rng.uniform(-0.1, 0.1), rng.uniform(-half, half)  # between obstacles
        sx, sy = rng.uniform(0.15, 0.35), rng.uniform(0.15, 0.35)
        m = (np.abs(X - bx) < sx / 2) & (np.abs(Y - by) < sy / 2)
        floor[m] = np.maximum(floor[m], rng.uniform(0.03, 0.08))
        if kind == "plain":  # a pillar from one wall, leaving at least 0.4 m free
            w = rng.uniform(0.2, half)
            side = rng.choice([-1.0, 1.0])
            solid |= (np.abs(X - x) < 0.1) & (side * Y > half - w)
        elif kind == "crouch":  # a low beam across the tunnel
            depth = rng.uniform(0.2, 0.5)
            ceil[np.abs(X - x) < depth / 2] = rng.uniform(0.16, 0.22)
        elif kind == "side":  # two walls, slots offset by 0.25-0.4 m, a 0.5 m pocket between them
            slot = rng.uniform(0.25, 0.3)
            y1 = rng.uniform(-half + 0.2, half - 0.2)
            off = rng.uniform(0.25, 0.4) * (1.0 if y1 < 0 else -1.0)
            y2 = np.clip(y1 + off, -half + 0.15, half - 0.15)
            for cx, cy in ((x - 0.3, y1), (x + 0.3, y2)):
                solid |= (np.abs(X - cx) < 0.05) & (np.abs(Y - cy) > slot / 2)
        elif kind == "tilt":  # a slanted slot: floor and ceiling slope across a 0.36 m band
            depth = rng.uniform(0.4, 0.6)
            yc = rng.uniform(-half + 0.25, half - 0.25)
            slope = np.tan(rng.uniform(np.radians(29), np.radians(33))) * rng.choice([-1.0, 1.0])
            gap = rng.uniform(0.16, 0.175)  # level body: h <= gap - |slope| * 0.10 < h_min; rolled: h <= gap cos(phi)
            band = np.abs(X - x) < depth / 2
            floor[band] = slope * (Y[band] - yc) + abs(slope) * 0.18  # a wedge rising from the floor (0) at its low edge
            ceil[band] = floor[band] + gap
            solid |= band & (np.abs(Y - yc) > 0.18)
        else:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        x += geo.spacing
    floor[solid] = SOLID_FLOOR
    ceil[solid] = SOLID_CEIL
    return floor.astype(np.float32), ceil.astype(np.float32), float(geo.start_x + distance)


def make_bank(kinds: list[str], distances: list[float], per_cell: int, geo: Geometry, seed: int):
    """per_cell tunnels of every (kind, distance): dict of arrays floor, ceil [M, NX, NY], goal_x,
    distance, kind (index into KINDS) [M]. Tunnel j of a cell draws from Generator([seed, kind, d, j])."""
    max_length = geo.start_x + max(distances) + 0.5
    floors, ceils, goal, dist, kind = [], [], [], [], []
    for k in kinds:
        for di, d in enumerate(distances):
            for j in range(per_cell):
                rng = np.random.default_rng([seed, KINDS.index(k), di, j])
                f, c, g = make_tunnel(k, d, geo, max_length, rng)
                floors.append(f)
                ceils.append(c)
                goal.append(g)
                dist.append(d)
                kind.append(KINDS.index(k))
    return {"floor": np.stack(floors), "ceil": np.stack(ceils), "goal_x": np.array(goal, np.float32),
            "distance": np.array(dist, np.float32), "kind": np.array(kind, np.int64)}
