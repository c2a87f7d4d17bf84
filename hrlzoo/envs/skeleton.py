"""Procedural skeleton actions on the 25-joint NTU RGB+D layout, recorded by three cameras and
preprocessed as the official HiCLR/AimCLR/CrosSCLR pipeline preprocesses NTU.

Why the NTU layout: the augmentations of skeleton contrastive learning are defined on it (the
left/right flip permutation of feeder/tools.py, the bone list of the bone stream), so they
carry over unchanged.

The generator (`generate`), in the terms of NTU RGB+D's protocol:

* **actions** are motion programs (`CLASSES`): each class drives a few degrees of freedom of a
  kinematic skeleton (shoulder flexion / abduction / rotation, elbows, hips, knees, spine
  flexion / side bend / twist, neck, jumps) with primitives over the action's normalised time
  u in [0, 1]: `hold` (reach a posture, keep it, return), `osc` (oscillate), `pulse` (c
  excursions there and back), `ramp` (go and stay). Classes come in families that share their
  main movement (`FAMILIES`), so neighbours in a family differ in one secondary trait;
* **subjects** have a body shape (height, limb and shoulder proportions), a style (amplitude
  and tempo) and a handedness (left-handed subjects do one-handed actions with the left side);
* **a performance** (subject, action, repetition) adds its own jitter (amplitudes, phases,
  frequencies, onset, a monotone time warp, idle sway, where the subject faces), idle frames
  before and after the action, and is recorded by three cameras at the same time, at
  -45, 0 and +45 degrees of yaw (NTU's camera 1, 2, 3), with a height and pitch per setup;
* **sensor artefacts** depend on the camera: joints hidden behind the torso as seen from the
  camera get extra, temporally correlated noise (as Kinect's inferred joints do), every joint
  gets white noise, and now and then a joint collapses onto its parent for a few frames;
* **preprocessing** is the official one (feeder/NTUDatasets.py, `data_type='relative'`,
  `sampling='resize'`, `y_rotation=True`, used by feeder/preprocess_ntu.py to make the 50-frame
  NTU60 data the official configs train on): subtract joint 21 (spine at the shoulders) frame by
  frame, resize the recorded frames to T by linear interpolation (cv2.INTER_LINEAR's
  half-pixel mapping), and rotate every frame about the vertical axis so that the shoulder
  line lies along x (`parallel_skeleton`);
* **splits** as NTU's: cross-subject (half of the subjects train, the rest test) and
  cross-view (cameras 2 and 3 train, camera 1 tests).

Coordinates before preprocessing: metres, y up; a subject facing the camera at yaw 0 has its
right side along +x. Arrays are [N, 3, T, 25] float32 (sample, xyz, frame, joint), the
official [N, C, T, V, M] with one person.

Everything is NumPy and batched over samples; one `numpy.random.Generator` per call, so the
same seed gives the same data bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# ------------------------------------------------------------------------- the NTU layout

JOINT_NAMES = ("spine_base", "spine_mid", "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "l_hand",
               "r_shoulder", "r_elbow", "r_wrist", "r_hand", "l_hip", "l_knee", "l_ankle", "l_foot",
               "r_hip", "r_knee", "r_ankle", "r_foot", "spine_shoulder", "l_hand_tip", "l_thumb",
               "r_hand_tip", "r_thumb")
V = 25
# Bone stream pairs (child, parent), 1-based, exactly the list of processor/pretrain_hiclr.py.
BONES = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
         (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (21, 21),
         (22, 23), (23, 8), (24, 25), (25, 12))
# Left/right flip permutation, 0-based: transform_order['ntu'] of feeder/tools.py.
FLIP_ORDER = (0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20, 23, 24, 21, 22)
# Drawing edges (0-based): the ST-GCN graph's neighbour pairs.
EDGES = tuple((i - 1, j - 1) for i, j in ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7),
                                          (9, 21), (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14),
                                          (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8),
                                          (24, 25), (25, 12)))
# The kinematic parent each joint collapses onto when its tracking fails (0-based; root: itself).
PARENT = (0, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 6, 11, 10)
CAMERA_YAW = (-45.0, 0.0, 45.0)  # NTU cameras 1, 2, 3
XVIEW_TRAIN_CAMERAS = (2, 3)     # NTU's cross-view protocol: cameras 2 and 3 train, camera 1 tests
FPS = 30.0

# Degrees of freedom driven by the motion programs (angles in degrees, root_y in metres).
DOFS = ("r_sh_flex", "r_sh_abd", "r_sh_rot", "r_elbow", "l_sh_flex", "l_sh_abd", "l_sh_rot", "l_elbow",
        "r_hip_flex", "r_hip_abd", "r_knee", "l_hip_flex", "l_hip_abd", "l_knee",
        "spine_flex", "spine_side", "spine_twist", "neck_flex", "root_y")
DOF = {d: i for i, d in enumerate(DOFS)}
REST = {"r_sh_abd": 8.0, "l_sh_abd": 8.0, "r_elbow": 12.0, "l_elbow": 12.0, "r_knee": 3.0, "l_knee": 3.0}

# ------------------------------------------------------------------------- the action programs

# A term: (dof, kind, amplitude, cycles, phase in turns). Kinds: hold (smooth window: reach the
# amplitude, keep it, return), osc (amplitude * sin(2 pi (cycles u + phase)) inside the window),
# pulse (amplitude * sin^2(pi cycles u): `cycles` excursions there and back), ramp (smoothstep
# to the amplitude, kept to the end). One-handed programs are written for the right side;
# left-handed subjects mirror them.
FAMILIES = {
    "wave": [
        ("wave_hand", [("r_sh_abd", "hold", 100, 0, 0), ("r_sh_rot", "hold", -80, 0, 0), ("r_elbow", "hold", 55, 0, 0),
                       ("r_elbow", "osc", 28, 3, 0)]),
        ("wave_arm", [("r_sh_abd", "hold", 110, 0, 0), ("r_sh_rot", "hold", -80, 0, 0), ("r_elbow", "hold", 25, 0, 0),
                      ("r_sh_abd", "osc", 22, 3, 0)]),
        ("circle_arm", [("r_sh_flex", "osc", 45, 2, 0), ("r_sh_abd", "osc", 45, 2, 0.25), ("r_sh_abd", "hold", 60, 0, 0),
                        ("r_elbow", "hold", 20, 0, 0)]),
    ],
    "reach": [
        ("punch", [("r_sh_flex", "pulse", 85, 3, 0), ("r_elbow", "hold", 70, 0, 0), ("r_elbow", "pulse", -60, 3, 0)]),
        ("reach_up", [("r_sh_flex", "hold", 165, 0, 0), ("r_elbow", "hold", 10, 0, 0)]),
        ("point_forward", [("r_sh_flex", "hold", 90, 0, 0), ("r_elbow", "hold", 5, 0, 0), ("spine_twist", "hold", 10, 0, 0)]),
    ],
    "to_head": [
        ("drink", [("r_sh_flex", "hold", 35, 0, 0), ("r_elbow", "hold", 125, 0, 0), ("neck_flex", "hold", -12, 0, 0)]),
        ("phone_call", [("r_sh_flex", "hold", 20, 0, 0), ("r_sh_abd", "hold", 45, 0, 0), ("r_elbow", "hold", 140, 0, 0),
                        ("neck_flex", "hold", 10, 0, 0)]),
        ("brush_hair", [("r_sh_abd", "hold", 95, 0, 0), ("r_sh_rot", "hold", -60, 0, 0), ("r_elbow", "hold", 115, 0, 0),
                        ("r_sh_flex", "osc", 15, 3, 0)]),
    ],
    "two_arms": [
        ("clap", [("r_sh_flex", "hold", 70, 0, 0), ("l_sh_flex", "hold", 70, 0, 0), ("r_elbow", "hold", 30, 0, 0),
                  ("l_elbow", "hold", 30, 0, 0), ("r_sh_abd", "osc", 18, 4, 0), ("l_sh_abd", "osc", 18, 4, 0)]),
        ("raise_both", [("r_sh_flex", "hold", 160, 0, 0), ("l_sh_flex", "hold", 160, 0, 0)]),
        ("cross_arms", [("r_sh_flex", "hold", 80, 0, 0), ("l_sh_flex", "hold", 80, 0, 0), ("r_sh_abd", "hold", -35, 0, 0),
                        ("l_sh_abd", "hold", -35, 0, 0), ("r_elbow", "hold", 70, 0, 0), ("l_elbow", "hold", 70, 0, 0)]),
    ],
    "legs": [
        ("kick", [("r_hip_flex", "pulse", 70, 2, 0), ("r_knee", "pulse", 40, 2, 0.0), ("l_sh_flex", "pulse", 25, 2, 0)]),
        ("march", [("r_hip_flex", "pulse", 55, 2, 0), ("l_hip_flex", "pulse", 55, 2, 0.5), ("r_knee", "pulse", 70, 2, 0),
                   ("l_knee", "pulse", 70, 2, 0.5), ("l_sh_flex", "osc", 25, 2, 0), ("r_sh_flex", "osc", -25, 2, 0)]),
        ("side_step", [("r_hip_abd", "pulse", 30, 2, 0), ("l_hip_abd", "pulse", 12, 2, 0), ("spine_side", "pulse", -8, 2, 0)]),
    ],
    "whole_body": [
        ("squat", [("r_hip_flex", "pulse", 85, 2, 0), ("l_hip_flex", "pulse", 85, 2, 0), ("r_knee", "pulse", 110, 2, 0),
                   ("l_knee", "pulse", 110, 2, 0), ("spine_flex", "pulse", 25, 2, 0), ("r_sh_flex", "pulse", 70, 2, 0),
                   ("l_sh_flex", "pulse", 70, 2, 0)]),
        ("jump", [("root_y", "pulse", 0.25, 3, 0), ("r_knee", "pulse", 35, 6, 0), ("l_knee", "pulse", 35, 6, 0),
                  ("r_sh_abd", "pulse", 30, 3, 0), ("l_sh_abd", "pulse", 30, 3, 0)]),
        ("sit_down", [("r_hip_flex", "ramp", 90, 0, 0), ("l_hip_flex", "ramp", 90, 0, 0), ("r_knee", "ramp", 95, 0, 0),
                      ("l_knee", "ramp", 95, 0, 0), ("spine_flex", "ramp", 15, 0, 0)]),
    ],
    "torso": [
        ("bow", [("spine_flex", "pulse", 55, 1, 0), ("neck_flex", "pulse", 20, 1, 0)]),
        ("side_bend", [("spine_side", "osc", 25, 2, 0), ("r_sh_abd", "hold", 25, 0, 0), ("l_sh_abd", "hold", 25, 0, 0)]),
        ("twist", [("spine_twist", "osc", 40, 2, 0), ("r_elbow", "hold", 80, 0, 0), ("l_elbow", "hold", 80, 0, 0),
                   ("r_sh_flex", "hold", 40, 0, 0), ("l_sh_flex", "hold", 40, 0, 0)]),
    ],
    "hands_body": [
        ("nod", [("neck_flex", "osc", 25, 3, 0)]),
        ("touch_chest", [("r_sh_flex", "hold", 40, 0, 0), ("r_sh_abd", "hold", -25, 0, 0), ("r_elbow", "hold", 110, 0, 0)]),
        ("wipe_face", [("r_sh_flex", "hold", 55, 0, 0), ("r_elbow", "hold", 120, 0, 0), ("r_sh_abd", "osc", 20, 3, 0),
                       ("l_sh_flex", "hold", 55, 0, 0), ("l_elbow", "hold", 120, 0, 0), ("l_sh_abd", "osc", 20, 3, 0.5)]),
    ],
}
CLASSES = tuple(name for fam in FAMILIES.values() for name, _ in fam)
FAMILY_OF = {name: f for f, fam in FAMILIES.items() for name, _ in fam}
PROGRAMS = {name: terms for fam in FAMILIES.values() for name, terms in fam}
KINDS = ("hold", "osc", "pulse", "ramp")


def one_handed(terms) -> bool:
    """A program that moves one side only (left-handed subjects mirror it)."""
    sides = {t[0][:2] for t in terms if t[0][:2] in ("r_", "l_")}
    return sides == {"r_"}


# ------------------------------------------------------------------------- configuration


@dataclass
class SkeletonConfig:
    """Knobs of the generator (the params schema of a paper mirrors them)."""

    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    subjects: int = 40
    repetitions: int = 1
    xsub_train_fraction: float = 0.5
    length_s: tuple[float, float] = (1.6, 2.6)       # action duration of an average-tempo subject (s)
    idle_s: tuple[float, float] = (0.1, 0.6)         # idle time before and after the action (s), each
    height: tuple[float, float] = (0.88, 1.12)       # subject's size factor
    proportions: float = 0.07                        # +- relative jitter of limb, torso and shoulder lengths
    style_amplitude: tuple[float, float] = (0.85, 1.15)
    style_tempo: tuple[float, float] = (0.8, 1.25)
    left_handed: float = 0.15
    amp_jitter: float = 0.2                          # +- relative, per term and performance
    freq_jitter: float = 0.1                         # +- relative
    phase_jitter: float = 0.08                       # +- turns
    warp: float = 0.15                               # time warp u + w sin(pi u), |w| <= this
    sway_deg: float = 3.0                            # idle sway amplitude
    facing_deg: float = 15.0                         # +- where the subject faces, shared by the cameras
    camera_yaw_jitter: float = 5.0                   # +- per setup
    camera_height: tuple[float, float] = (0.7, 1.4)  # m
    camera_distance: tuple[float, float] = (2.5, 3.5)
    camera_pitch_jitter: float = 8.0                 # +- deg on top of looking at the subject
    noise: float = 0.006                             # m, white, every joint
    occluded_noise: float = 0.03                     # m, correlated, joints hidden behind the torso
    drop_rate: float = 0.3                           # expected joint collapses per sequence
    drop_frames: tuple[int, int] = (4, 15)
    frames: int = 50                                 # T after resizing (official: 50)


# ------------------------------------------------------------------------- kinematics


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _mv(r, v):
    """r [..., 3, 3] @ v [..., 3] (v broadcast)."""
    return np.einsum("...ij,...j->...i", r, np.broadcast_to(v, r.shape[:-1]))


SEGMENTS = {  # metres for size factor 1
    "pelvis_mid": 0.24, "mid_shoulder": 0.24, "neck": 0.08, "head": 0.16, "shoulder_w": 0.18, "upper_arm": 0.28,
    "forearm": 0.26, "hand": 0.08, "tip": 0.07, "thumb": 0.05, "hip_w": 0.10, "thigh": 0.43, "shin": 0.41,
    "foot": 0.13, "ankle_h": 0.08,
}


def forward_kinematics(q: np.ndarray, body: dict[str, np.ndarray], facing: np.ndarray) -> np.ndarray:
    """Joint positions [N, L, 25, 3] from DOF angles q [N, L, len(DOFS)] (degrees; root_y in m),
    segment lengths body[k] [N] and the facing yaw [N] (radians). The pelvis height keeps the
    lower foot on the ground (so bending the knees lowers the body); root_y lifts it (jumps)."""
    n, length, _ = q.shape
    d = lambda name: np.deg2rad(q[..., DOF[name]])  # noqa: E731
    seg = {k: v[:, None, None] for k, v in body.items()}  # [N, 1, 1]
    up = np.array([0.0, 1.0, 0.0])
    down = -up
    r_face = _ry(np.broadcast_to(facing[:, None], (n, length)))
    r_torso = r_face @ _ry(d("spine_twist")) @ _rz(d("spine_side")) @ _rx(-d("spine_flex"))
    r_lower = r_face @ _ry(0.5 * d("spine_twist")) @ _rz(0.5 * d("spine_side")) @ _rx(-0.5 * d("spine_flex"))
    j = np.zeros((n, length, V, 3))
    pelvis = np.zeros((n, length, 3))
    j[:, :, 0] = pelvis
    j[:, :, 1] = pelvis + _mv(r_lower, up) * seg["pelvis_mid"]
    j[:, :, 20] = j[:, :, 1] + _mv(r_torso, up) * seg["mid_shoulder"]
    r_neck = r_torso @ _rx(-d("neck_flex"))
    j[:, :, 2] = j[:, :, 20] + _mv(r_neck, up) * seg["neck"]
    j[:, :, 3] = j[:, :, 2] + _mv(r_neck, up) * seg["head"]
    for side, sign, sh, el, wr, ha, tip, th in (("r", 1.0, 8, 9, 10, 11, 23, 24), ("l", -1.0, 4, 5, 6, 7, 21, 22)):
        j[:, :, sh] = j[:, :, 20] + _mv(r_torso, np.array([sign, -0.12, 0.0])) * seg["shoulder_w"]
        r_sh = r_torso @ _rx(d(f"{side}_sh_flex")) @ _rz(sign * d(f"{side}_sh_abd"))
        j[:, :, el] = j[:, :, sh] + _mv(r_sh, down) * seg["upper_arm"]
        r_fore = r_sh @ _ry(sign * d(f"{side}_sh_rot")) @ _rx(d(f"{side}_elbow"))
        fore = _mv(r_fore, down)
        j[:, :, wr] = j[:, :, el] + fore * seg["forearm"]
        j[:, :, ha] = j[:, :, wr] + fore * seg["hand"]
        j[:, :, tip] = j[:, :, ha] + fore * seg["tip"]
        j[:, :, th] = j[:, :, wr] + fore * (0.5 * seg["thumb"]) + _mv(r_fore, np.array([-sign * 0.4, 0, -1.0])) * seg["thumb"]
    r_hips = r_face
    for side, sign, hip, knee, ankle, foot in (("r", 1.0, 16, 17, 18, 19), ("l", -1.0, 12, 13, 14, 15)):
        j[:, :, hip] = pelvis + _mv(r_hips, np.array([sign, -0.3, 0.0])) * seg["hip_w"]
        r_thigh = r_hips @ _rx(d(f"{side}_hip_flex")) @ _rz(sign * d(f"{side}_hip_abd"))
        j[:, :, knee] = j[:, :, hip] + _mv(r_thigh, down) * seg["thigh"]
        r_shin = r_thigh @ _rx(-d(f"{side}_knee"))
        j[:, :, ankle] = j[:, :, knee] + _mv(r_shin, down) * seg["shin"]
        j[:, :, foot] = j[:, :, ankle] + _mv(r_hips, np.array([0.0, -0.4, -1.0])) * seg["foot"]
    # stand on the lower foot: lift everything so min(ankle height) = ankle_h, then add root_y
    lift = seg["ankle_h"][..., 0] - np.minimum(j[:, :, 14, 1], j[:, :, 18, 1]) + q[..., DOF["root_y"]]
    j[..., 1] += lift[..., None]
    return j


# ------------------------------------------------------------------------- programs -> DOFs


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _window(u, edge=0.18):
    return _smoothstep(u / edge) * _smoothstep((1 - u) / edge)


def program_dofs(cls: np.ndarray, u: np.ndarray, amp: np.ndarray, freq: np.ndarray, phase: np.ndarray,
                 mirror: np.ndarray, classes: list[str]) -> np.ndarray:
    """DOF trajectories [N, L, len(DOFS)] of the action programs at normalised times u [N, L]
    (outside [0, 1]: the rest posture). amp/freq/phase [N, max_terms]: per-term jitter factors
    (amplitude x, frequency x, phase + turns); mirror [N]: left-handed performance."""
    n, length = u.shape
    q = np.zeros((n, length, len(DOFS)))
    inside = ((u >= 0) & (u <= 1)).astype(np.float64)
    uc = np.clip(u, 0.0, 1.0)
    for ci, name in enumerate(classes):
        rows = np.flatnonzero(cls == ci)
        if rows.size == 0:
            continue
        for k, (dof, kind, a, c, ph) in enumerate(PROGRAMS[name]):
            x = uc[rows]
            a_k = a * amp[rows, k][:, None]
            c_k = c * freq[rows, k][:, None] if kind == "osc" else c  # pulses keep whole excursions
            ph_k = ph + phase[rows, k][:, None]
            if kind == "hold":
                val = a_k * _window(x)
            elif kind == "osc":
                val = a_k * np.sin(2 * np.pi * (c_k * x + ph_k)) * _window(x)
            elif kind == "pulse":
                val = a_k * np.sin(np.pi * (c_k * x + ph_k)) ** 2 * _window(x, 0.1) * inside[rows]
            elif kind == "ramp":
                val = a_k * _smoothstep(x / 0.7) * (u[rows] >= 0)
            else:
                raise ValueError(f"unknown primitive {kind!r}")
            cols = np.full(rows.size, DOF[dof])
            if dof[:2] in ("r_", "l_"):  # left-handed: the other side
                other = DOF[("l_" if dof[:2] == "r_" else "r_") + dof[2:]]
                cols = np.where(mirror[rows], other, cols)
            elif dof in ("spine_side", "spine_twist"):
                val = np.where(mirror[rows][:, None], -val, val)
            q[rows[:, None], np.arange(length)[None, :], cols[:, None]] += val
    for dof, v in REST.items():
        q[..., DOF[dof]] += v
    return q


# ------------------------------------------------------------------------- preprocessing (official)


def resize_frames(x: np.ndarray, lengths: np.ndarray, frames: int) -> np.ndarray:
    """NTUMotionProcessor.real_resize: the first `lengths[i]` frames of x[i] ([N, Lmax, V, 3])
    resized to `frames` by linear interpolation with cv2.INTER_LINEAR's half-pixel centres."""
    n = x.shape[0]
    dst = np.arange(frames) + 0.5
    src = dst[None, :] * (lengths[:, None] / frames) - 0.5  # [N, T]
    src = np.clip(src, 0.0, lengths[:, None] - 1.0)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, lengths[:, None] - 1)
    w = (src - lo)[..., None, None]
    rows = np.arange(n)[:, None]
    return x[rows, lo] * (1 - w) + x[rows, hi] * w


def parallel_skeleton(x: np.ndarray) -> np.ndarray:
    """feeder/NTUDatasets.py parallel_skeleton for a batch: rotate every frame about y so that
    right shoulder - left shoulder lies along +x. x [N, T, V, 3] -> same shape."""
    vec = x[:, :, 8] - x[:, :, 4]
    vec = vec * np.array([1.0, 0.0, 1.0])
    norm = np.sqrt((vec ** 2).sum(-1))
    theta = np.degrees(np.arccos(np.clip(vec[..., 0] / (norm + 1e-4), -1.0, 1.0)))  # [N, T]
    flip = vec[..., 2].sum(-1) >= 0  # one sign per sequence, as the official `isv`
    theta = np.where(flip[:, None], -theta, theta)
    t = np.radians(theta)
    c, s = np.cos(t), np.sin(t)
    rot = np.zeros(t.shape + (3, 3))
    rot[..., 0, 0], rot[..., 0, 2], rot[..., 1, 1], rot[..., 2, 0], rot[..., 2, 2] = c, -s, 1.0, s, c
    return np.einsum("ntij,ntvj->ntvi", rot, x)


def preprocess(x: np.ndarray, lengths: np.ndarray, frames: int) -> np.ndarray:
    """The official NTU preprocessing: centre on joint 21 per frame, resize to `frames`,
    y-rotation per frame. x [N, Lmax, V, 3] (recorded, camera coordinates) -> [N, 3, T, V]."""
    x = x - x[:, :, 20:21]
    x = resize_frames(x, lengths, frames)
    x = parallel_skeleton(x)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32)


# ------------------------------------------------------------------------- the generator


def _u(rng, lo_hi, size):
    return rng.uniform(lo_hi[0], lo_hi[1], size)


def generate(cfg: SkeletonConfig, seed: int, batch: int = 256, progress=None):
    """Every (subject, class, repetition, camera) of the protocol. Returns (x [N, 3, T, 25]
    float32, meta: dict of [N] arrays: label, subject, camera (1..3), repetition, performance,
    left_handed, length (recorded frames), xsub ('train'/'test'), xview ('train'/'test'))."""
    rng = np.random.default_rng(seed)
    classes = list(cfg.classes)
    unknown = [c for c in classes if c not in PROGRAMS]
    if unknown:
        raise ValueError(f"unknown action class {unknown[0]!r}")
    ns, nc, nr = cfg.subjects, len(classes), cfg.repetitions
    # subjects
    height = _u(rng, cfg.height, ns)
    props = {k: height * rng.uniform(1 - cfg.proportions, 1 + cfg.proportions, ns) for k in SEGMENTS}
    for k in ("tip", "thumb", "ankle_h"):
        props[k] = height * 1.0
    style_amp = _u(rng, cfg.style_amplitude, ns)
    style_tempo = _u(rng, cfg.style_tempo, ns)
    lefty = rng.random(ns) < cfg.left_handed
    train_subjects = np.sort(rng.permutation(ns)[: int(round(cfg.xsub_train_fraction * ns))])
    # performances (subject, class, repetition), each seen by three cameras
    perf_s, perf_c, perf_r = (a.ravel() for a in np.meshgrid(np.arange(ns), np.arange(nc), np.arange(nr), indexing="ij"))
    npf = perf_s.size
    setups = rng.integers(0, 17, npf)  # NTU's 17 setups: camera heights and distances
    setup_h = _u(rng, cfg.camera_height, (17, 3))
    setup_d = _u(rng, cfg.camera_distance, (17, 3))
    setup_pitch = rng.uniform(-cfg.camera_pitch_jitter, cfg.camera_pitch_jitter, (17, 3))
    setup_yaw = rng.uniform(-cfg.camera_yaw_jitter, cfg.camera_yaw_jitter, (17, 3))
    xs, meta = [], {k: [] for k in ("label", "subject", "camera", "repetition", "performance", "left_handed", "length")}
    for a in range(0, npf, batch):
        idx = np.arange(a, min(a + batch, npf))
        subj, cls = perf_s[idx], perf_c[idx]
        b = idx.size
        tempo = style_tempo[subj] * rng.uniform(0.85, 1.18, b)
        act_len = np.round(_u(rng, cfg.length_s, b) / tempo * FPS).astype(np.int64)
        pre = np.round(_u(rng, cfg.idle_s, b) * FPS).astype(np.int64)
        post = np.round(_u(rng, cfg.idle_s, b) * FPS).astype(np.int64)
        lengths = pre + act_len + post
        lmax = int(lengths.max())
        frame = np.arange(lmax)[None, :]
        u = (frame - pre[:, None]) / np.maximum(act_len[:, None] - 1, 1)
        w = rng.uniform(-cfg.warp, cfg.warp, b)[:, None]
        inside = (u >= 0) & (u <= 1)
        u = np.where(inside, u + w * np.sin(np.pi * np.clip(u, 0, 1)) / np.pi, u)
        terms = max(len(PROGRAMS[c]) for c in classes)
        amp = style_amp[subj][:, None] * rng.uniform(1 - cfg.amp_jitter, 1 + cfg.amp_jitter, (b, terms))
        freq = rng.uniform(1 - cfg.freq_jitter, 1 + cfg.freq_jitter, (b, terms))
        phase = rng.uniform(-cfg.phase_jitter, cfg.phase_jitter, (b, terms))
        mirror = lefty[subj] & np.array([one_handed(PROGRAMS[classes[c]]) for c in cls])
        q = program_dofs(cls, u, amp, freq, phase, mirror, classes)
        # idle sway: slow, small, on the spine and arms
        tsec = frame / FPS
        for dof, scale in (("spine_side", 1.0), ("spine_flex", 0.7), ("r_sh_flex", 1.5), ("l_sh_flex", 1.5)):
            f0 = rng.uniform(0.2, 0.6, b)[:, None]
            p0 = rng.uniform(0, 2 * np.pi, b)[:, None]
            q[..., DOF[dof]] += cfg.sway_deg * scale * np.sin(2 * np.pi * f0 * tsec + p0)
        body = {k: v[subj] for k, v in props.items()}
        body = {k: body[k] * SEGMENTS[k] for k in SEGMENTS}
        facing = np.radians(rng.uniform(-cfg.facing_deg, cfg.facing_deg, b))
        world = forward_kinematics(q, body, facing)  # [b, L, V, 3]
        for cam in (1, 2, 3):
            st = setups[idx]
            yaw = np.radians(CAMERA_YAW[cam - 1] + setup_yaw[st, cam - 1])
            hgt, dist = setup_h[st, cam - 1], setup_d[st, cam - 1]
            # camera on a circle around the subject's start position, looking at it
            pos = np.stack([-dist * np.sin(yaw), hgt, -dist * np.cos(yaw)], -1)  # the subject faces -z
            look = np.array([0.0, 1.0, 0.0]) - pos
            pitch = np.arctan2(look[:, 1], np.hypot(look[:, 0], look[:, 2])) + np.radians(setup_pitch[st, cam - 1])
            heading = np.arctan2(look[:, 0], look[:, 2])
            r_cam = _rx(pitch) @ _ry(-heading)  # world -> camera: undo heading, then tilt
            rel = world - pos[:, None, None, :]
            cam_xyz = np.einsum("bij,blvj->blvi", r_cam, rel)
            cam_xyz = _sensor(cam_xyz, world, pos, lengths, cfg, rng)
            xs.append(preprocess(cam_xyz, lengths, cfg.frames))
            meta["label"].append(cls)
            meta["subject"].append(subj)
            meta["camera"].append(np.full(b, cam))
            meta["repetition"].append(perf_r[idx])
            meta["performance"].append(idx)
            meta["left_handed"].append(mirror)
            meta["length"].append(lengths)
        if progress is not None:
            progress(b)
    x = np.concatenate(xs)
    out = {k: np.concatenate(v) for k, v in meta.items()}
    order = np.lexsort((out["camera"], out["performance"]))
    x = x[order]
    out = {k: v[order] for k, v in out.items()}
    out["xsub"] = np.where(np.isin(out["subject"], train_subjects), "train", "test")
    out["xview"] = np.where(np.isin(out["camera"], XVIEW_TRAIN_CAMERAS), "train", "test")
    return x, out


def _sensor(cam_xyz, world, cam_pos, lengths, cfg: SkeletonConfig, rng) -> np.ndarray:
    """Depth-sensor artefacts in camera coordinates [b, L, V, 3]: white noise; correlated noise
    on joints the torso hides from this camera; joints collapsing onto their parent for a few
    frames. Frames past a sequence's length are left as they are (cut by the resize)."""
    b, length = cam_xyz.shape[:2]
    out = cam_xyz + rng.normal(0.0, cfg.noise, cam_xyz.shape)
    # hidden: behind the torso plane as seen from the camera and within its silhouette
    centre = world[:, :, [0, 1, 20]].mean(2, keepdims=True)                   # [b, L, 1, 3]
    to_cam = cam_pos[:, None, None, :] - centre
    to_cam = to_cam / np.linalg.norm(to_cam, axis=-1, keepdims=True)
    rel = world - centre
    depth = (rel * to_cam).sum(-1)                                             # > 0: towards the camera
    lateral = np.linalg.norm(rel - depth[..., None] * to_cam, axis=-1)
    hidden = (depth < -0.04) & (lateral < 0.28)
    from scipy.ndimage import convolve1d

    kernel = np.hanning(11)[1:-1]
    kernel /= np.sqrt((kernel ** 2).sum())  # unit variance after smoothing
    smooth = convolve1d(rng.normal(0.0, 1.0, cam_xyz.shape), kernel, axis=1, mode="constant")
    out = out + hidden[..., None] * cfg.occluded_noise * smooth
    # collapses
    n_drop = rng.poisson(cfg.drop_rate, b)
    for i in np.flatnonzero(n_drop):
        for _ in range(n_drop[i]):
            v = int(rng.integers(1, V))
            span = int(rng.integers(cfg.drop_frames[0], cfg.drop_frames[1] + 1))
            start = int(rng.integers(0, max(1, lengths[i] - span)))
            out[i, start:start + span, v] = out[i, start:start + span, PARENT[v]]
    return out


# ------------------------------------------------------------------------- drawing


def draw_skeleton(ax, joints: np.ndarray, color="C0", lw=1.5, elev_axes=(0, 1), alpha=1.0) -> None:
    """Draw one frame's 25 joints ([3, V] or [V, 3]) on a matplotlib 2-D axis, projected on
    `elev_axes` (0, 1 = x, y: the front view after preprocessing)."""
    j = joints.T if joints.shape[0] == 3 and joints.shape[1] == V else joints
    a, b = elev_axes
    for p, c in EDGES:
        ax.plot([j[p, a], j[c, a]], [j[p, b], j[c, b]], color=color, lw=lw, alpha=alpha, solid_capstyle="round")
    ax.scatter(j[:, a], j[:, b], s=4, color=color, alpha=alpha, zorder=3)
