"""The validation pilot that chose RFT's sampling settings (not a pipeline stage).

    python -m stages.worldrft.pilot [--seeds 0] [--top K] [--candidates I ...]

Why: with the stop-10 settings (uniform scene sampling, the Gaussian's std 0.3-1.5 m along
and 0.1-0.3 m across, independent waypoints, G = 16) the collision term of the reward varied
in very few GRPO groups, so GRPO had almost no collision signal to follow (report: Collision
signal). Issue 15 declares three ways to give it one, each a parameter of params/worldrft.yaml
`rft:` chosen here on the VALIDATION split, never on test:
  interactive_share  the share of each GRPO batch drawn from interactive training frames
                     (method.interactive_frames, margin rft.interactive_margin);
  sigma scale        a factor on sigma_lon and sigma_lat (the sampling scale of the
                     Gaussianisation), and noise_corr, the correlation of the noise between
                     waypoints (a whole-plan shift, as braking or speeding up is);
  group              G, the samples per scene.
What it does, for each seed of --seeds (training seeds of the pipeline: the world model and the
imitation planner hpd_lir are trained exactly as the train stage trains them, from the same seeds):
  1. probe: every setting of GRID, the collision signal on the imitation planner without
     training (learn.probe_signal on training frames);
  2. RFT: the collision-aware GRPO run of every CANDIDATE setting (every setting whose probe
     signal reaches the gate's share, or with --top K only the K of them with the most probe
     signal, ties to the lower index; always the stop-10 setting too), from that planner, on the
     training split; then the open-loop L2 and collision rate of the result on the val split,
     and the signal of its training groups.
The rule that picks the declared setting, fixed before the pilot was run: among the candidates
whose training groups carry a non-zero collision advantage in at least 20% of the groups (the
gate of stages/worldrft/claims.yaml) and whose val L2 is at most 0.1 m above the imitation
planner's (rft_keeps_l2's margin), the one with the lowest val collision rate (mean over the
pilot seeds). Writes reports/worldrft/rft_selection.json and .md (committed; the report shows them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

OUT = Path("reports/worldrft")
CACHE = Path("data/worldrft/pilot")
STOP10 = {"group": 16, "sigma_scale": 1.0, "noise_corr": 0.0, "interactive_share": 0.0}
GRID = [dict(group=g, sigma_scale=s, noise_corr=c, interactive_share=i)
        for g, s, c, i in itertools.product((16, 32), (1.0, 2.0, 4.0), (0.0, 0.9), (0.0, 0.5))]
GATE_SHARE = 0.2   # stages/worldrft/claims.yaml gate collision_signal
L2_MARGIN = 0.1    # stages/worldrft/claims.yaml rft_keeps_l2


def setting_params(p, s: dict):
    """A ProbeParams of a pilot setting (sigma_scale multiplies the params' sigma_lon / sigma_lat)."""
    from stages.worldrft.params import ProbeParams

    base = p.rft.probe.get("stop10") or p.rft.sampling()
    return ProbeParams(group=s["group"], sigma_lon=[s["sigma_scale"] * v for v in base.sigma_lon],
                       sigma_lat=[s["sigma_scale"] * v for v in base.sigma_lat], noise_corr=s["noise_corr"],
                       interactive_share=s["interactive_share"])


def imitation_planner(p, seed: int, splits, device):
    """The world model and hpd_lir of `seed`, trained as stages/worldrft/train.py trains them
    (cached under data/worldrft/pilot/)."""
    import numpy as np
    import torch

    from hrlzoo.envs.driving.raster import CHANNELS
    from stages.worldrft import learn, method
    from stages.worldrft.nets import Dims, WorldModel, make_planner
    from stages.worldrft.params import IL_METHODS, sizes

    s, cfg, T = sizes(p).train, p.sim, p.sim.horizon
    train = splits["train"]
    dims = Dims(channels=len(CHANNELS), local=p.nets.local, latent=p.nets.latent, heads=p.nets.heads, ff=p.nets.ff)
    rel = method.relative_future(train["expert_future"][..., :2], train["ego_state"][:, 0], cfg.dt)
    anchors = method.kmeans_anchors(rel, p.planner.anchors, seed)
    net = make_planner("hpd_lir", dims, T, cfg.dt, cfg.raster, anchors=torch.from_numpy(anchors),
                       rounds=p.planner.rounds, layers=p.planner.global_layers)
    path = CACHE / f"hpd_lir_seed{seed}_{p.scale}.pt"
    if path.exists():
        net.load_state_dict(torch.load(path))
        return net.eval()
    guard = lambda name, v, step: v  # noqa: E731
    torch.manual_seed(1000 * seed)
    wm = WorldModel(dims, T)
    learn.pretrain_world_model(wm, train, p, seed, s.wm_steps, s.wm_batch, s.log_every, device, guard)
    anchor_ids = method.nearest_anchor(rel, anchors)
    torch.manual_seed(1000 * seed + 1 + IL_METHODS.index("hpd_lir"))
    net = make_planner("hpd_lir", dims, T, cfg.dt, cfg.raster, anchors=torch.from_numpy(anchors),
                       rounds=p.planner.rounds, layers=p.planner.global_layers)
    net.encoder.load_state_dict(wm.encoder.state_dict())
    learn.imitate(net, train, p, seed, s.il_steps, s.il_batch, s.log_every, device, guard, anchor_ids)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net.eval()


def val_scores(planner, val, p, batch: int) -> dict:
    from stages.worldrft import evaluate as ev

    return {k: v for k, v in ev.open_loop_summary(ev.open_loop(ev.plan_frames(planner, val, batch), val, p.sim)).items()
            if k in ("l2_avg", "col_avg")}


def main(argv: list[str] | None = None) -> int:
    import dataclasses

    import numpy as np
    import torch

    from hrlzoo.pipeline.params import load_params
    from stages.worldrft import learn, method
    from stages.worldrft.data import load_splits
    from stages.worldrft.params import WorldRFTParams, sizes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--candidates", type=int, nargs="*", default=None,
                    help="indices into GRID of the settings to fine-tune (default: every setting whose probe "
                         "signal reaches the gate's share, and the stop-10 setting)")
    ap.add_argument("--top", type=int, default=None,
                    help="fine-tune only the K settings with the most probe signal that reach the gate (and stop-10)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    p = load_params("worldrft", WorldRFTParams)
    s = sizes(p)
    splits = load_splits()
    train, val = splits["train"], splits["val"]
    pool = np.flatnonzero(method.interactive_frames(train.a, p.sim, p.rft.interactive_margin))
    w = p.rft.rewards["worldrft"]
    result = {"scale": p.scale, "seeds": args.seeds, "top": args.top, "grid": GRID, "interactive_margin": p.rft.interactive_margin,
              "interactive_train_share": len(pool) / len(train), "rule": __doc__.split("The rule that picks")[1].strip(),
              "probe": [], "runs": [], "imitation": {}}
    t0 = time.perf_counter()
    for seed in args.seeds:
        il = imitation_planner(p, seed, splits, torch.device("cpu"))
        result["imitation"][seed] = val_scores(il, val, p, s.eval.batch)
        print(f"seed {seed}: imitation on val {result['imitation'][seed]}", flush=True)
        for i, g in enumerate(GRID):
            pr = learn.probe_signal(il, train, p, setting_params(p, g), w, pool, 1000 * seed + 20, s.train.probe_steps,
                                    s.train.rft_scenes)
            result["probe"].append({"seed": seed, "setting": i, **g, **pr})
            print(f"  probe {i} {g}: signal {100 * pr['signal_share']:.1f}% col_adv {100 * pr['col_adv_share']:.1f}%",
                  flush=True)
    probe_mean = {i: np.mean([r["signal_share"] for r in result["probe"] if r["setting"] == i]) for i in range(len(GRID))}
    reaching = sorted((i for i, v in probe_mean.items() if v >= GATE_SHARE), key=lambda i: (-probe_mean[i], i))
    candidates = args.candidates if args.candidates is not None else sorted(
        set(reaching[:args.top] if args.top is not None else reaching) | {GRID.index(STOP10)})
    result["candidates"] = candidates
    for seed in args.seeds:
        il = imitation_planner(p, seed, splits, torch.device("cpu"))
        for i in candidates:
            setting = setting_params(p, GRID[i])
            q = dataclasses.replace(p, rft=dataclasses.replace(
                p.rft, group=setting.group, sigma_lon=setting.sigma_lon, sigma_lat=setting.sigma_lat,
                noise_corr=setting.noise_corr, interactive_share=setting.interactive_share))
            t = time.perf_counter()
            policy, rows, signal = learn.finetune(il, train, q, w, 1000 * seed + 10, s.train.rft_steps,
                                                  s.train.rft_scenes, s.train.log_every, lambda n, v, st: v, pool=pool)
            run = {"seed": seed, "setting": i, **GRID[i], **learn.signal_rates(signal), **val_scores(policy, val, p, s.eval.batch),
                   "seconds": time.perf_counter() - t}
            result["runs"].append(run)
            print(f"  rft {i} {GRID[i]}: val col {run['col_avg']:.3f}% l2 {run['l2_avg']:.3f} signal "
                  f"{100 * run['signal_share']:.1f}% ({run['seconds']:.0f} s)", flush=True)
    result["choice"] = choose(result)
    result["seconds"] = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rft_selection.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    (OUT / "rft_selection.md").write_text(selection_md(result))
    print(f"choice: {result['choice']}")
    return 0


def choose(result: dict) -> dict | None:
    """The rule of the module doc: per candidate, means over the pilot seeds."""
    import numpy as np

    il = {int(k): v for k, v in result["imitation"].items()}
    best = None
    for i in result["candidates"]:
        runs = [r for r in result["runs"] if r["setting"] == i]
        if not runs:
            continue
        share = float(np.mean([r["signal_share"] for r in runs]))
        col = float(np.mean([r["col_avg"] for r in runs]))
        dl2 = float(np.mean([r["l2_avg"] - il[r["seed"]]["l2_avg"] for r in runs]))
        if share >= GATE_SHARE and dl2 <= L2_MARGIN and (best is None or col < best["val_col_avg"]):
            best = {"setting": i, **result["grid"][i], "val_col_avg": col, "val_l2_change": dl2, "signal_share": share}
    return best


def selection_md(result: dict) -> str:
    """The pilot's tables (markdown), for the report."""
    import numpy as np

    lines = [f"Validation pilot (`python -m stages.worldrft.pilot`, scale `{result['scale']}`, seeds {result['seeds']}): "
             f"{100 * result['interactive_train_share']:.1f}% of the training frames are interactive "
             f"(margin {result['interactive_margin']:g} m).", "",
             "Imitation planner on val: " + ", ".join(f"seed {k}: L2 {v['l2_avg']:.3f} m, collisions {v['col_avg']:.3f}%"
                                                       for k, v in result["imitation"].items()), "",
             "Collision signal of each setting on the imitation planner, before any training (mean over seeds): "
             "share of GRPO groups with a non-zero collision advantage, and the collision term's share of |advantage|:", "",
             "| # | G | sigma x | rho | interactive share | groups with signal | collision share of abs(A) | samples colliding |",
             "|---|---|---|---|---|---|---|---|"]
    for i, g in enumerate(result["grid"]):
        rows = [r for r in result["probe"] if r["setting"] == i]
        lines.append(f"| {i} | {g['group']} | {g['sigma_scale']:g} | {g['noise_corr']:g} | {g['interactive_share']:g} | "
                     f"{100 * np.mean([r['signal_share'] for r in rows]):.1f}% | "
                     f"{100 * np.mean([r['col_adv_share'] for r in rows]):.1f}% | "
                     f"{100 * np.mean([r['sample_collision'] for r in rows]):.2f}% |")
    lines += ["", "Collision-aware GRPO with each candidate setting, scored on val (mean over seeds):", "",
              "| # | G | sigma x | rho | interactive share | training groups with signal | val collisions (%) | val L2 (m) |",
              "|---|---|---|---|---|---|---|---|"]
    for i in result["candidates"]:
        rows = [r for r in result["runs"] if r["setting"] == i]
        if rows:
            g = result["grid"][i]
            lines.append(f"| {i} | {g['group']} | {g['sigma_scale']:g} | {g['noise_corr']:g} | {g['interactive_share']:g} | "
                         f"{100 * np.mean([r['signal_share'] for r in rows]):.1f}% | "
                         f"{np.mean([r['col_avg'] for r in rows]):.3f} | {np.mean([r['l2_avg'] for r in rows]):.3f} |")
    c = result["choice"]
    lines += ["", f"Rule: {result['rule']}", "",
              "Chosen: " + (f"setting {c['setting']} (G = {c['group']}, sigma x {c['sigma_scale']:g}, rho {c['noise_corr']:g}, "
                            f"interactive share {c['interactive_share']:g}): val collisions {c['val_col_avg']:.3f}%, "
                            f"L2 change {c['val_l2_change']:+.3f} m, signal in {100 * c['signal_share']:.1f}% of groups"
                            if c else "none met the rule"),
              f"(pilot wall time {result['seconds'] / 60:.1f} min)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
