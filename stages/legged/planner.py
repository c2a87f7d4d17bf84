"""The high level: a classical planner over body pose with box clearance (spec B §7.2-7.4).

Official: `go1_gym/utils/planner.py` plans with OMPL over 6-DoF body poses, a pose valid when the
robot's box (inflated) intersects no floor or ceiling point of the two-layer map; in the training
env `_plan_target_pose` sorts sampled poses by distance to the goal. Ours (the issue allows
"A* over a pose lattice"): a lattice over (x, y, body height, roll) at yaw 0 (along the tunnel),
x, y every `xy_step`, heights `heights`, rolls `rolls`; a state is valid when the box inflated by
`margin` (and `margin_h` on top) rests on the floor without touching a wall or the ceiling
(the env's own collision test, `body.place`); edges join 8-neighbours in x, y at the same pose
(cost: time at that height's speed limit) and neighbouring poses at the same x, y (cost
`pose_cost`), and an edge exists when both ends are valid and the floor under them differs by
at most the step limit. Shortest paths by Dijkstra from the goal (scipy.sparse.csgraph: A* with
a zero heuristic, so the same optimal path), so one search gives the cost-to-go of every state.
Waypoints: the path's states every `waypoint_spacing` metres of path, plus every state where
the pose changes, plus the goal.
"""

from __future__ import annotations

import numpy as np

from stages.legged.body import BodyConfig, Maps, place, sample_uv


def lattice_validity(maps: Maps, tunnel: int, geo, body: BodyConfig, xy_step: float, heights, rolls,
                     margin: float, margin_h: float, x_max: float):
    """valid [NX, NY, H, R] bool and z0 [NX, NY, H, R] of tunnel `tunnel`'s lattice, with its x, y axes."""
    import torch

    xs = np.arange(0.2, x_max + 1e-9, xy_step)
    half = geo.width / 2
    ys = np.arange(-half + xy_step / 2, half, xy_step)
    X, Y, H, R = np.meshgrid(xs, ys, np.asarray(heights), np.asarray(rolls), indexing="ij")
    f = lambda a: torch.as_tensor(a.ravel(), dtype=torch.float32)
    U, V = sample_uv(body, margin)
    zero = torch.zeros(X.size)
    z0, hit = place(maps, torch.full((X.size,), tunnel, dtype=torch.long), f(X), f(Y), zero, f(H), f(R), zero,
                    U, V, margin_h=margin_h)
    shape = X.shape
    return (~hit).numpy().reshape(shape), z0.numpy().reshape(shape), xs, ys


def plan(valid, z0, xs, ys, heights, rolls, body: BodyConfig, start, goal, goal_radius: float, pose_cost: float,
         step_max: float):
    """Shortest path on the lattice from `start` (x, y) to within goal_radius of `goal` (x, y).
    Returns the path as [L, 4] (x, y, h, roll), or None when no path exists."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    nx, ny, nh, nr = valid.shape
    n = valid.size
    ids = np.arange(n).reshape(valid.shape)
    rows, cols, cost = [], [], []
    step = xs[1] - xs[0] if len(xs) > 1 else 0.1
    speed = np.array([body.v_max * body.speed_scale(h) for h in heights])

    def link(a_sl, b_sl, c):
        ok = valid[a_sl] & valid[b_sl] & (np.abs(z0[a_sl] - z0[b_sl]) <= step_max)
        rows.append(ids[a_sl][ok])
        cols.append(ids[b_sl][ok])
        cost.append(np.broadcast_to(c, ok.shape)[ok])

    S = slice(None)
    hcost = (step / speed)[None, None, :, None]
    link((slice(1, None), S, S, S), (slice(None, -1), S, S, S), hcost)
    link((S, slice(1, None), S, S), (S, slice(None, -1), S, S), hcost)
    dcost = hcost * np.sqrt(2)
    for a, b in (((slice(1, None), slice(1, None)), (slice(None, -1), slice(None, -1))),
                 ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None)))):
        # a diagonal move also needs both corner states valid
        ok_c = valid[(a[0], b[1], S, S)] & valid[(b[0], a[1], S, S)]
        sub = np.where(ok_c, dcost, np.inf)
        link((*a, S, S), (*b, S, S), sub)
    link((S, S, slice(1, None), S), (S, S, slice(None, -1), S), pose_cost)
    link((S, S, S, slice(1, None)), (S, S, S, slice(None, -1)), pose_cost)
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(cost)
    keep = np.isfinite(w)
    r, c, w = r[keep], c[keep], w[keep]
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    near = (np.hypot(X - goal[0], Y - goal[1]) < goal_radius)[:, :, None, None] & valid
    goal_ids = ids[near]
    if len(goal_ids) == 0:
        return None
    G = n  # a virtual goal node joined to every goal state at (near) zero cost
    r = np.concatenate([r, goal_ids])
    c = np.concatenate([c, np.full(len(goal_ids), G)])
    w = np.concatenate([w, np.full(len(goal_ids), 1e-9)])
    A = coo_matrix((w, (r, c)), shape=(n + 1, n + 1)).tocsr()
    dist, pred = dijkstra(A, directed=False, indices=G, return_predecessors=True)
    ix = int(np.argmin(np.abs(xs - start[0])))
    iy = int(np.argmin(np.abs(ys - start[1])))
    cand = ids[ix, iy][valid[ix, iy]]
    if len(cand) == 0:
        return None
    s = int(cand[np.argmin(dist[cand])])
    if not np.isfinite(dist[s]):
        return None
    path = []
    while s != G and s >= 0:
        i, j, k, l = np.unravel_index(s, valid.shape)
        path.append((xs[i], ys[j], heights[k], 0.0 if nr == 1 else rolls[l]))
        s = int(pred[s])
    return np.asarray(path, dtype=np.float32)


def waypoints(path: np.ndarray, spacing: float, goal) -> np.ndarray:
    """The path's states every `spacing` metres of path length and wherever the pose changes, then the goal."""
    out = []
    run = 0.0
    for i in range(1, len(path)):
        run += float(np.hypot(*(path[i, :2] - path[i - 1, :2])))
        pose_change = bool(np.any(path[i, 2:] != path[i - 1, 2:]))
        if run >= spacing or pose_change:
            out.append(path[i])
            run = 0.0
    last = path[-1]
    out.append(np.array([goal[0], goal[1], last[2], last[3]], dtype=np.float32))
    return np.asarray(out, dtype=np.float32)
