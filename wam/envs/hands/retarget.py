"""Retargeting: a human hand's 21 keypoints onto the Shadow hand, by damped least squares on MuJoCo itself.

For each frame the robot hand's root pose (6 DoF) and 24 joints are moved so that its keypoint sites
(`kp_<name>`, the same 21 canonical points, see embodiments.py) land where the person's are, fingertips
weighted most: a person's hand is smaller than Shadow's, so not every point can match, and the tips are
what touches the world. Each frame starts from the last one's solution (motion is smooth), iterates
Gauss-Newton steps with Levenberg damping, keeps each joint in its range, holds each finger's distal
joint to its middle one as the Shadow hand's tendon does (a row of the least squares, not a clamp), and
pushes the hand out of anything it penetrates (one row per penetrating contact, along its normal): the
table always, and the objects when the caller has placed them in the solver's scene.

Where the keypoints come from: the hand track of a human-video dataset is in the egocentric camera's
frame (`wam.ego.hands`). `camera_to_world` places that camera where the robot scene's head camera is,
so the person's hands appear in front of the robot as they appeared in front of the person: for the
simulated human this is exact (both scenes share the camera); for real video it is the usual
egocentric alignment.

The retargeted motion becomes the robot env's action space (env.py): the palm's move and turn between
consecutive frames (EgoScale's relative wrist pose) and the actuated joints as targets.

No dependency beyond MuJoCo: mink 0.0.13 (the line that works with the project's MuJoCo pin) measured
14.6 ms/frame on the same problem (building-blocks note); this solver's time is in the retargeting benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from wam.ego.hands import KEYPOINTS
from wam.envs.hands import embodiments as emb
from wam.envs.hands import rotations
from wam.envs.hands.env import MOVE_M, TURN_RAD, build_model, rotation_6d

# How much each keypoint counts: the fingertips touch the world; the rest shape the hand.
_WEIGHT = {"wrist": 0.6, "thumb_cmc": 0.1}
WEIGHTS = np.array([_WEIGHT.get(k, 1.0 if k.endswith("tip") else 0.3) for k in KEYPOINTS])
# Shadow's tendon keeps 0.00705 * J0 = 0.00805 * J1 on each finger (shared.xml, T_<F>J1c).
_COUPLED = tuple((f"robot0:{f}J0", f"robot0:{f}J1", 0.00705, 0.00805) for f in ("FF", "MF", "RF", "LF"))
OPENCV_TO_MUJOCO_CAMERA = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class RetargetConfig:
    """Solver settings: iterations per frame, Levenberg damping, tendon-coupling and posture weights."""

    iterations: int = 12
    damping: float = 1e-4
    coupling_weight: float = 30.0
    posture_weight: float = 1e-3
    first_frame_iterations: int = 60  # the first frame starts from the open hand, far from the answer
    contact_weight: float = 3.0  # pushes the hand out of whatever it penetrates (the table, objects placed in the scene)


class ShadowRetargeter:
    """Solves frames one after another (warm-started); `task` picks the scene, whose objects only matter to the
    penetration check (`penetration`)."""

    def __init__(self, config: RetargetConfig = RetargetConfig(), task: str = "touch"):
        self.config = config
        self.model, self.hand = build_model(task, "robot")
        self.data = mujoco.MjData(self.model)
        model = self.model
        root = model.joint("hand_root")
        self._root_qpos, self._root_dof = int(root.qposadr[0]), int(root.dofadr[0])
        self._joints = [model.joint(j) for j in self.hand.joints]
        self._dofs = np.array([self._root_dof + i for i in range(6)] + [int(j.dofadr[0]) for j in self._joints])
        self._sites = [model.site(s).id for s in emb.keypoint_sites()]
        self._coupled = [(model.joint(a).dofadr[0], model.joint(b).dofadr[0], ca, cb) for a, b, ca, cb in _COUPLED]
        self._hand_qpos = np.array([int(j.qposadr[0]) for j in self._joints])
        self._low, self._high = model.jnt_range[[j.id for j in self._joints]].T
        self._neutral = np.clip(np.zeros(len(self._joints)), self._low, self._high)
        root_body = model.body(emb.ROOT_BODY).id
        self._hand_bodies = np.array([model.body_rootid[b] == root_body for b in range(model.nbody)])
        mujoco.mj_forward(model, self.data)
        self._fresh = True

    def reset(self) -> None:
        mujoco.mj_resetData(self.model, self.data)
        mujoco.mj_forward(self.model, self.data)
        self._fresh = True

    def keypoints(self) -> np.ndarray:
        return self.data.site_xpos[self._sites].copy()

    def solve(self, targets: np.ndarray) -> np.ndarray:
        """Pose the hand for one frame of (21, 3) world targets; returns the robot keypoints reached."""
        model, data, config = self.model, self.data, self.config
        if self._fresh:
            self._place_root(targets)
        iterations = config.first_frame_iterations if self._fresh else config.iterations
        self._fresh = False
        weights = np.repeat(np.sqrt(WEIGHTS), 3)
        jacobian = np.zeros((3, model.nv))
        rows = 3 * len(self._sites) + len(self._coupled)
        for _ in range(iterations):
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            residual = np.zeros(rows)
            system = np.zeros((rows, len(self._dofs)))
            for i, site in enumerate(self._sites):
                mujoco.mj_jacSite(model, data, jacobian, None, site)
                system[3 * i : 3 * i + 3] = jacobian[:, self._dofs]
                residual[3 * i : 3 * i + 3] = targets[i] - data.site_xpos[site]
            system[: 3 * len(self._sites)] *= weights[:, None]
            residual[: 3 * len(self._sites)] *= weights
            base = 3 * len(self._sites)
            for k, (dof_a, dof_b, ca, cb) in enumerate(self._coupled):
                qa, qb = data.qpos[self._qpos_of(dof_a)], data.qpos[self._qpos_of(dof_b)]
                w = config.coupling_weight
                residual[base + k] = -w * (ca * qa - cb * qb) / cb
                system[base + k, list(self._dofs).index(dof_a)] = w * ca / cb
                system[base + k, list(self._dofs).index(dof_b)] = -w
            if config.contact_weight > 0:
                pushes, push_rows = self._contact_rows()
                residual, system = np.r_[residual, pushes], np.vstack([system, push_rows])
            posture = config.posture_weight * np.r_[np.zeros(6), self._neutral - data.qpos[self._hand_qpos]]
            normal = system.T @ system + (config.damping + config.posture_weight) * np.eye(len(self._dofs))
            step = np.linalg.solve(normal, system.T @ residual + config.posture_weight * posture)
            velocity = np.zeros(model.nv)
            velocity[self._dofs] = step
            mujoco.mj_integratePos(model, data.qpos, velocity, 1.0)
            data.qpos[self._hand_qpos] = np.clip(data.qpos[self._hand_qpos], self._low, self._high)
        mujoco.mj_kinematics(model, data)
        return self.keypoints()

    def _contact_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """One least-squares row per contact where the hand penetrates something else: move the hand's contact point
        out along the contact normal by the depth (MuJoCo's normal points from geom1 to geom2)."""
        model, data = self.model, self.data
        mujoco.mj_collision(model, data)
        residuals, rows = [], []
        point_jacobian = np.zeros((3, model.nv))
        for contact in data.contact[: data.ncon]:
            if contact.dist >= 0:
                continue
            hand = [self._hand_bodies[model.geom_bodyid[g]] for g in (contact.geom1, contact.geom2)]
            if hand[0] == hand[1]:
                continue
            geom = contact.geom1 if hand[0] else contact.geom2
            outward = -contact.frame[:3] if hand[0] else contact.frame[:3]
            mujoco.mj_jac(model, data, point_jacobian, None, contact.pos, model.geom_bodyid[geom])
            rows.append(self.config.contact_weight * outward @ point_jacobian[:, self._dofs])
            residuals.append(self.config.contact_weight * -contact.dist)
        if not rows:
            return np.zeros(0), np.zeros((0, len(self._dofs)))
        return np.asarray(residuals), np.asarray(rows)

    def _qpos_of(self, dof: int) -> int:
        joint = self.model.dof_jntid[dof]
        return int(self.model.jnt_qposadr[joint])

    def _place_root(self, targets: np.ndarray) -> None:
        """Start the first frame with the palm at the person's wrist (rotation from the solver)."""
        mujoco.mj_kinematics(self.model, self.data)
        shift = targets[0] - self.data.site_xpos[self._sites[0]]
        self.data.qpos[self._root_qpos : self._root_qpos + 3] += shift

    def robot_state(self) -> np.ndarray:
        """The robot env's `state` for the current pose: palm position, its rotation's two columns, the 24 joints."""
        palm = self.data.body(emb.PALM_BODY)
        return np.concatenate([palm.xpos, rotation_6d(palm.xmat), self.data.qpos[self._hand_qpos]])

    def actuator_targets(self) -> np.ndarray:
        """Each actuator's joint angle now, as the env's [-1, 1] action value."""
        low, high = self.model.actuator_ctrlrange.T
        angles = np.array([self.data.qpos[self.model.jnt_qposadr[self.model.actuator_trnid[a, 0]]] for a in range(self.model.nu)])
        return np.clip(2 * (angles - low) / (high - low) - 1, -1, 1)


def palm_actions(states: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(T, 33) retargeted robot states and (T, 20) actuator targets -> (T, 26) env actions: the palm's move and turn
    toward the next frame's pose, then the next frame's finger targets (the last frame holds still).

    The env moves its palm target by at most 1.5 cm and 0.1 rad a step. Where the retargeted palm moves faster, the
    action saturates and the rest is carried into the next steps: the actions are computed against the target the
    env will actually have (integrated here as the env integrates them), so the commanded path catches up instead
    of drifting by what was clipped."""
    length = len(states)
    actions = np.zeros((length, 6 + targets.shape[1]))
    position, rotation = states[0, :3].copy(), rotations.from_6d(states[0, 3:9])
    for t in range(length - 1):
        move = np.clip((states[t + 1, :3] - position) / MOVE_M, -1.0, 1.0)
        turn = rotations.log(rotations.from_6d(states[t + 1, 3:9]) @ rotation.T) / TURN_RAD
        turn *= min(1.0, 1.0 / max(np.abs(turn).max(), 1e-12))  # the env clips each value; keep the axis instead
        position = position + move * MOVE_M
        rotation = rotations.exp(turn * TURN_RAD) @ rotation
        actions[t, :6] = np.r_[move, turn]
        actions[t, 6:] = targets[t + 1]
    actions[-1, 6:] = targets[-1]
    return np.clip(actions, -1.0, 1.0)


def camera_to_world(model: mujoco.MjModel, data: mujoco.MjData, camera: str = "ego") -> np.ndarray:
    """4x4 pose of a scene camera with OpenCV axes (x right, y down, z forward), the hand track's camera frame."""
    mujoco.mj_kinematics(model, data)
    pose = np.eye(4)
    pose[:3, :3] = data.cam(camera).xmat.reshape(3, 3) @ OPENCV_TO_MUJOCO_CAMERA
    pose[:3, 3] = data.cam(camera).xpos
    return pose
