"""The two hands of the hand scenes: the Shadow robot hand and a human hand, built into one MjSpec.

Both hands are mounted the same way, so a task, a camera or an expert never asks which one it drives:
the hand's root body (`hand_root`) has a free joint welded to a mocap body (`hand_target`), and the
env moves the mocap. Gravity is compensated on every hand body, as an arm holding the hand would.
Both share one frame convention: from the root, fingers point along +z, the palm faces -y and the
thumb is on +x (a right hand); the scene turns the root so fingers point forward and the palm down.

Every hand carries the 21 canonical keypoints (`wam.ego.hands.KEYPOINTS`) as sites `kp_<name>`, plus
`kp_<finger>_metacarpal` for EgoDex's 25-joint hand, and a wrist camera `wrist` on its palm.

**Shadow** (gymnasium-robotics' `hand/robot.xml`, 24 joints, 20 position actuators; the distal joint of each
finger follows the middle one through a tendon, as on the real hand). Its electric forearm is kept for
contact but not drawn: in a head camera it would hide the scene, and a Shadow hand on an arm shows none.

**Human**: written here (no licence-gated or non-co-installable model needed), a right hand of adult
proportions built from capsules with a skin look and a sleeved forearm: a palm 9.5 cm from wrist to the
middle knuckle, fingers of three phalanges whose lengths follow anthropometric means, a thumb on a
saddle joint. Each finger flexes and spreads at its knuckle and flexes at PIP; DIP follows PIP at 2/3
(an equality constraint, as the tendons of a real finger couple them). 20 joints, 16 actuators. Its
kinematics and proportions differ from Shadow's on purpose: retargeting has to bridge them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from wam.ego.hands import FINGERS, KEYPOINTS

EMBODIMENTS = ("robot", "human")
ROOT_BODY = "hand_root"
TARGET_BODY = "hand_target"
PALM_BODY = "palm"
SKIN = (0.87, 0.68, 0.57, 1.0)
SLEEVE = (0.25, 0.32, 0.48, 1.0)


def shadow_assets() -> Path:
    """gymnasium-robotics' asset folder, found without importing the package (its import prints notices)."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Shadow hand needs gymnasium-robotics (pip install gymnasium-robotics==1.4.2)")
    return Path(spec.submodule_search_locations[0]) / "envs" / "assets"


@dataclass(frozen=True)
class HandModel:
    """What the env needs to know about the hand it drives, read from the compiled model by name."""

    embodiment: str
    actuators: tuple[str, ...]  # in action order, after the 6 wrist values
    joints: tuple[str, ...]  # the hand's joints (not the root's free joint), in state order
    synergy: dict[str, np.ndarray]  # named finger poses (open, point, grasp, hook, push) as actuator targets in [-1, 1]


# -- Shadow --------------------------------------------------------------------------------------
_SHADOW_FINGER = {"index": "ff", "middle": "mf", "ring": "rf", "little": "lf"}
_SHADOW_SITES = {"wrist": ("palm", (0, 0, 0)), "thumb_cmc": ("thbase", (0, 0, 0)), "thumb_mcp": ("thhub", (0, 0, 0)),
                 "thumb_ip": ("thdistal", (0, 0, 0)), "thumb_tip": ("thdistal", (0, 0, 0.0275))}
for _finger, _short in _SHADOW_FINGER.items():
    _SHADOW_SITES |= {f"{_finger}_mcp": (f"{_short}proximal", (0, 0, 0)), f"{_finger}_pip": (f"{_short}middle", (0, 0, 0)),
                      f"{_finger}_dip": (f"{_short}distal", (0, 0, 0)), f"{_finger}_tip": (f"{_short}distal", (0, 0, 0.026)),
                      f"{_finger}_metacarpal": ("palm", (0.033 - 0.022 * FINGERS.index(_finger), 0, 0.05))}


def shadow_xml() -> tuple[str, str, str]:
    """The compiler line, the `<include>`s of defaults and assets, and the body include of the Shadow hand."""
    assets = shadow_assets()
    compiler = f'<compiler angle="radian" coordinate="local" meshdir="{assets}/stls/hand" texturedir="{assets}/textures"/>'
    head = f'<include file="{assets}/hand/shared.xml"/>'
    asset = f'<include file="{assets}/hand/shared_asset.xml"/>'
    return compiler + head, asset, f'<include file="{assets}/hand/robot.xml"/>'


def finish_shadow(spec: mujoco.MjSpec) -> None:
    """Rename the mount to the common root, hide the forearm, name the palm and add the keypoint sites."""
    spec.body("robot0:hand mount").name = ROOT_BODY
    spec.body("robot0:palm").name = PALM_BODY
    spec.geom("robot0:V_forearm").group = 3
    for name, (body, pos) in _SHADOW_SITES.items():
        body_name = body if body == PALM_BODY else f"robot0:{body}"
        spec.body(body_name).add_site(name=f"kp_{name}", pos=list(pos), size=[0.004, 0, 0], group=3)
    spec.body(PALM_BODY).add_camera(name="wrist", pos=[0.0, 0.09, 0.0], xyaxes=[-1, 0, 0, 0, 0.42, 0.91], fovy=75)


def shadow_model(model: mujoco.MjModel) -> HandModel:
    actuators = tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(model.nu))
    joints = tuple(n for n in (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(model.njnt))
                   if n and n.startswith("robot0:"))
    return HandModel("robot", actuators, joints, _synergies(actuators, _shadow_pose, push="open"))  # a wall of fingertips


def _shadow_pose(actuator: str, pose: str) -> float:
    """One actuator's target for a named pose, in [-1, 1] of its range (-1 the range's low end)."""
    joint = actuator.removeprefix("robot0:A_")
    finger, number = joint[:2], joint[-1]
    if finger == "WR":
        return 0.555 if joint == "WRJ1" else 0.176  # 0 rad, level with the forearm (the ranges are not centred on 0)
    if finger == "TH":
        thumb = {"open": {"4": 0.2, "3": -1.0, "2": 0.0, "1": 0.0, "0": 0.0},
                 "point": {"4": 0.4, "3": 0.6, "2": 0.0, "1": 0.3, "0": -0.6},
                 "grasp": {"4": 1.0, "3": 0.9, "2": 0.5, "1": 0.6, "0": -0.5},
                 "hook": {"4": 0.2, "3": -1.0, "2": 0.0, "1": 0.0, "0": 0.0}}
        return thumb[pose][number]
    if number in "34" and not (finger == "LF" and number == "4"):
        return 0.0  # spread: centred
    if finger == "LF" and number == "4":
        return -1.0 if pose != "grasp" else 0.0
    flex = {"open": -1.0, "point": -1.0 if finger == "FF" else 0.9, "grasp": 1.0, "hook": 0.35}[pose]
    if pose == "hook" and number == "2":
        return -0.7  # knuckles straight, fingertips curled: a hook
    return flex


def _synergies(actuators: tuple[str, ...], pose_of, push: str) -> dict[str, np.ndarray]:
    """Named finger poses; `push` is the pose this hand pushes with (each hand's own: the plan only names it)."""
    poses = {pose: np.array([pose_of(a, pose) for a in actuators], np.float32) for pose in ("open", "point", "grasp", "hook")}
    return poses | {"push": poses[push].copy()}


# -- human ---------------------------------------------------------------------------------------
# Finger: knuckle position on the palm (x across, z along), phalanx lengths, radius. Adult means (metres).
_HUMAN_FINGERS = {
    "index": ((0.030, 0.090), (0.042, 0.025, 0.020), 0.0095),
    "middle": ((0.008, 0.095), (0.046, 0.029, 0.021), 0.0098),
    "ring": ((-0.013, 0.090), (0.043, 0.027, 0.020), 0.0092),
    "little": ((-0.032, 0.080), (0.034, 0.020, 0.018), 0.0082),
}
_THUMB = ((0.022, 0.022), (0.045, 0.033, 0.028), 0.011)
_FLEX = (0.0, 1.6)  # MCP and PIP flexion range (rad)
_SPREAD = (-0.3, 0.3)


def _capsule(length: float, radius: float) -> str:
    return (f'<geom type="capsule" fromto="0 0 0 0 0 {length:.4f}" size="{radius:.4f}" material="human_skin"'
            f' contype="1" conaffinity="0" condim="4" friction="1.2 0.01 0.001" mass="0.01"/>')


def _finger_xml(name: str, base, lengths, radius) -> tuple[str, list[str], list[str]]:
    (x, z), (proximal, middle, distal) = base, lengths
    body = (f'<site name="kp_{name}_metacarpal" pos="{x * 0.8:.4f} 0 {z * 0.45:.4f}" size="0.004" group="3"/>'
            f'<body name="{name}_proximal" pos="{x} 0 {z}">'
            f'<joint name="{name}_mcp_spread" axis="0 1 0" range="{_SPREAD[0]} {_SPREAD[1]}" damping="0.05"/>'
            f'<joint name="{name}_mcp" axis="1 0 0" range="{_FLEX[0]} {_FLEX[1]}" damping="0.05"/>'
            f'<site name="kp_{name}_mcp" size="0.004" group="3"/>{_capsule(proximal, radius)}'
            f'<body name="{name}_middle" pos="0 0 {proximal}">'
            f'<joint name="{name}_pip" axis="1 0 0" range="{_FLEX[0]} {_FLEX[1] + 0.2}" damping="0.05"/>'
            f'<site name="kp_{name}_pip" size="0.004" group="3"/>{_capsule(middle, radius * 0.92)}'
            f'<body name="{name}_distal" pos="0 0 {middle}">'
            f'<joint name="{name}_dip" axis="1 0 0" range="0 1.3" damping="0.05"/>'
            f'<site name="kp_{name}_dip" size="0.004" group="3"/>{_capsule(distal - radius * 0.8, radius * 0.85)}'
            f'<site name="kp_{name}_tip" pos="0 0 {distal:.4f}" size="0.004" group="3"/>'
            "</body></body></body>")
    return body, [f"{name}_mcp_spread", f"{name}_mcp", f"{name}_pip"], [f"{name}_dip"]


def human_xml() -> tuple[str, str, str]:
    """(head, asset, body) MJCF fragments of the human hand, same roles as `shadow_xml`."""
    fingers, actuated, coupled = [], [], []
    for name, (base, lengths, radius) in _HUMAN_FINGERS.items():
        body, moving, following = _finger_xml(name, base, lengths, radius)
        fingers.append(body)
        actuated += moving
        coupled += following
    (tx, tz), (t1, t2, t3), tr = _THUMB
    thumb = (f'<body name="thumb_metacarpal" pos="{tx} -0.008 {tz}" euler="0 0.9 -0.5">'
             '<joint name="thumb_cmc_spread" axis="0 1 0" range="-0.5 0.6" damping="0.05"/>'
             '<joint name="thumb_cmc" axis="1 0 0" range="-0.2 1.0" damping="0.05"/>'
             f'<site name="kp_thumb_cmc" size="0.004" group="3"/>{_capsule(t1, tr)}'
             f'<body name="thumb_proximal" pos="0 0 {t1}"><joint name="thumb_mcp" axis="1 0 0" range="-0.2 1.0" damping="0.05"/>'
             f'<site name="kp_thumb_mcp" size="0.004" group="3"/>{_capsule(t2, tr * 0.9)}'
             f'<body name="thumb_distal" pos="0 0 {t2}"><joint name="thumb_ip" axis="1 0 0" range="-0.2 1.3" damping="0.05"/>'
             f'<site name="kp_thumb_ip" size="0.004" group="3"/>{_capsule(t3 - tr * 0.8, tr * 0.85)}'
             f'<site name="kp_thumb_tip" pos="0 0 {t3}" size="0.004" group="3"/></body></body></body>')
    actuated += ["thumb_cmc_spread", "thumb_cmc", "thumb_mcp", "thumb_ip"]
    # A sleeved forearm, shortened so that a tipped hand does not fill the head camera (the arm stands for the wrist's
    # rest pose; the robot's forearm is not drawn at all).
    body = (f'<body name="{ROOT_BODY}" pos="0 0 0">'
            '<geom type="capsule" fromto="0 0 0.15 0 0 0.26" size="0.03" material="human_sleeve" contype="0" conaffinity="0" mass="0.5"/>'
            '<geom type="capsule" fromto="0 0 0.24 0 0 0.30" size="0.026" material="human_skin" contype="0" conaffinity="0" mass="0.1"/>'
            f'<body name="{PALM_BODY}" pos="0 0 0.30"><site name="kp_wrist" size="0.004" group="3"/>'
            '<geom type="box" pos="0 0 0.047" size="0.041 0.013 0.045" material="human_skin" contype="1" conaffinity="0" mass="0.2"/>'
            '<geom type="capsule" fromto="-0.03 0 0.09 0.03 0 0.09" size="0.013" material="human_skin" contype="1" conaffinity="0" mass="0.02"/>'
            '<camera name="wrist" pos="0 0.09 0" xyaxes="-1 0 0 0 0.42 0.91" fovy="75"/>'
            + "".join(fingers) + thumb + "</body></body>")
    actuators = "".join(f'<position name="A_{j}" joint="{j}" kp="6" ctrlrange="{_range(j)}" forcerange="-4 4"/>' for j in actuated)
    coupling = "".join(f'<joint joint1="{d}" joint2="{d[:-4]}_pip" polycoef="0 0.667 0 0 0"/>' for d in coupled)
    head = f"<actuator>{actuators}</actuator><equality>{coupling}</equality>"
    # The Shadow scene's sky, so that only the hand differs between the two scenes; MuJoCo draws a skybox only when the
    # model has another texture too, which the skin's is.
    asset = ('<texture type="skybox" builtin="gradient" rgb1="0.44 0.85 0.56" rgb2="0.46 0.87 0.58" width="32" height="32"/>'
             f'<texture name="human_skin" type="2d" builtin="flat" rgb1="{" ".join(map(str, SKIN[:3]))}" width="8" height="8"/>'
             '<material name="human_skin" texture="human_skin" specular="0.15" shininess="0.2"/>'
             f'<material name="human_sleeve" rgba="{" ".join(map(str, SLEEVE))}" specular="0.05"/>')
    return head, asset, body


def _range(joint: str) -> str:
    if joint.endswith("spread"):
        return "-0.5 0.6" if joint.startswith("thumb") else f"{_SPREAD[0]} {_SPREAD[1]}"
    if joint.startswith("thumb"):
        return "-0.2 1.3" if joint.endswith("ip") else "-0.2 1.0"
    return f"{_FLEX[0]} {_FLEX[1] + (0.2 if joint.endswith('pip') else 0.0)}"


def human_model(model: mujoco.MjModel) -> HandModel:
    actuators = tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(model.nu))
    hand_joints = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(model.njnt)]
    joints = tuple(n for n in hand_joints if n and any(n.startswith(f) for f in (*FINGERS, "thumb")))
    # A person pushes a small block with curled fingers: open fingers, as compliant as a human hand's, fold over it.
    return HandModel("human", actuators, joints, _synergies(actuators, _human_pose, push="grasp"))


def _human_pose(actuator: str, pose: str) -> float:
    joint = actuator.removeprefix("A_")
    if joint.endswith("spread"):
        return {"open": 0.3, "point": 0.0, "grasp": 0.0, "hook": 0.0}[pose] if not joint.startswith("thumb") else \
            {"open": -0.6, "point": 0.2, "grasp": 0.9, "hook": -0.6}[pose]
    if joint.startswith("thumb"):
        return {"open": -0.9, "point": 0.4, "grasp": 1.0, "hook": -0.9}[pose]
    flex = {"open": -0.95, "point": -0.95 if joint.startswith("index") else 0.8, "grasp": 0.35, "hook": 0.2}[pose]
    if pose == "hook" and joint.endswith("_mcp"):
        return -0.9
    return flex


def keypoint_sites() -> tuple[str, ...]:
    """The 21 canonical keypoint sites, in KEYPOINTS order."""
    return tuple(f"kp_{name}" for name in KEYPOINTS)
