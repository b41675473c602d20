"""The canonical hand track: what every egocentric-video importer turns its source into.

Human video datasets store hands in many ways (EgoDex: 25 ARKit joint transforms a hand;
DexYCB: 21 joints in the camera frame; others: MANO parameters). wam keeps one form, so that
pretraining, retargeting and the console read every source the same way:

    HandTrack            one episode
      hands[side]        "left" / "right" (a side the source does not have is absent)
        keypoints        (T, 21, 3) metres, world frame, in KEYPOINTS order
        wrist_pose       (T, 4, 4) wrist-to-world SE(3)
        confidence       (T,) in [0, 1]; 0 where the hand is not tracked (its values are then zeros)
      camera_pose        (T, 4, 4) camera-to-world, camera axes as OpenCV's: x right, y down, z forward
      intrinsics         (3, 3) pixels of the video as stored, or None where the source has none
      fps, text

The 21 keypoints are the MANO / OpenPose order: the wrist, then for the thumb CMC, MCP, IP
and tip, and for each finger MCP, PIP, DIP and tip (index, middle, ring, little).

In a wam dataset the track becomes three per-frame features (`track_features`, `track_data`):

    observation.state               both hands in the *camera* frame (what the egocentric camera
                                    sees; it does not change when the person walks around):
                                    per side, 21 x (x, y, z), then the wrist pose as its
                                    translation (x, y, z; the wrist keypoint again where the source's
                                    wrist transform is that joint's) and the first two columns of its
                                    rotation (r0..r5, the continuous 6-D form), then confidence:
                                    73 values a side, 146 in all, named `right.index_tip.x`,
                                    `left.wrist_pose.r3`, `right.confidence`, ...
    observation.camera_pose         camera-to-world: translation (x, y, z) and rotation r0..r5
    observation.camera_intrinsics   fx, fy, cx, cy (zeros where unknown)

`decode_state` turns these back into a HandTrack (rotations re-orthonormalised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wam.data.layout import STATE_KEY, Feature
from wam.errors import DatasetError

SIDES = ("left", "right")
FINGERS = ("index", "middle", "ring", "little")
KEYPOINTS: tuple[str, ...] = (
    ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    + tuple(f"{finger}_{joint}" for finger in FINGERS for joint in ("mcp", "pip", "dip", "tip"))
)
NUM_KEYPOINTS = len(KEYPOINTS)  # 21
CAMERA_POSE_KEY = "observation.camera_pose"
INTRINSICS_KEY = "observation.camera_intrinsics"
POSE_NAMES = ("x", "y", "z", "r0", "r1", "r2", "r3", "r4", "r5")
INTRINSICS_NAMES = ("fx", "fy", "cx", "cy")


def side_names(side: str) -> tuple[str, ...]:
    """The 73 state names of one hand, in encoding order."""
    points = tuple(f"{side}.{kp}.{axis}" for kp in KEYPOINTS for axis in "xyz")
    return points + tuple(f"{side}.wrist_pose.{n}" for n in POSE_NAMES) + (f"{side}.confidence",)


STATE_NAMES: tuple[str, ...] = side_names("left") + side_names("right")
SIDE_WIDTH = len(STATE_NAMES) // len(SIDES)  # 73


@dataclass
class HandFrames:
    """One hand over an episode (world frame); see the module docstring for the shapes."""

    keypoints: np.ndarray  # (T, 21, 3)
    wrist_pose: np.ndarray  # (T, 4, 4)
    confidence: np.ndarray  # (T,)


@dataclass
class HandTrack:
    """One episode's hands, camera and text; `validate` before trusting it."""

    hands: dict[str, HandFrames]
    camera_pose: np.ndarray  # (T, 4, 4) camera-to-world, OpenCV axes
    intrinsics: np.ndarray | None  # (3, 3)
    fps: float
    text: str

    @property
    def length(self) -> int:
        return int(self.camera_pose.shape[0])

    def validate(self, where: str) -> None:
        """Raise DatasetError `{where}: <field> ...` for a wrong shape, a non-finite value, a frame count that
        differs from the camera's, or a pose that is not a rigid transform."""
        _check_poses(self.camera_pose, "camera_pose", where, None)
        length = self.length
        if length == 0:
            raise DatasetError(f"{where}: camera_pose has no frames")
        if self.intrinsics is not None:
            k = np.asarray(self.intrinsics)
            if k.shape != (3, 3):
                raise DatasetError(f"{where}: intrinsics must be 3x3, got {k.shape}")
            if not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
                raise DatasetError(f"{where}: intrinsics must be finite with positive focal lengths, got {k.tolist()}")
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise DatasetError(f"{where}: fps must be positive, got {self.fps}")
        if not self.hands:
            raise DatasetError(f"{where}: no hands")
        for side, hand in self.hands.items():
            if side not in SIDES:
                raise DatasetError(f"{where}: hand side {side!r} is not one of {SIDES}")
            points = np.asarray(hand.keypoints)
            if points.shape != (length, NUM_KEYPOINTS, 3):
                raise DatasetError(f"{where}: {side}.keypoints must be ({length}, {NUM_KEYPOINTS}, 3), got {points.shape}")
            bad = ~np.isfinite(points).all(axis=2)  # (T, 21)
            if bad.any():
                frame, point = np.argwhere(bad)[0]
                raise DatasetError(f"{where}: {side}.{KEYPOINTS[point]} is not finite at frame {frame}")
            _check_poses(hand.wrist_pose, f"{side}.wrist_pose", where, length)
            confidence = np.asarray(hand.confidence)
            if confidence.shape != (length,):
                raise DatasetError(f"{where}: {side}.confidence must be ({length},), got {confidence.shape}")
            if not np.all(np.isfinite(confidence)) or confidence.min() < 0 or confidence.max() > 1:
                raise DatasetError(f"{where}: {side}.confidence must lie in [0, 1]")


def _check_poses(poses: np.ndarray, name: str, where: str, length: int | None) -> None:
    poses = np.asarray(poses)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or (length is not None and poses.shape[0] != length):
        expected = f"({length if length is not None else 'T'}, 4, 4)"
        raise DatasetError(f"{where}: {name} must be {expected}, got {poses.shape}")
    finite = np.isfinite(poses).all(axis=(1, 2))
    if not finite.all():
        raise DatasetError(f"{where}: {name} is not finite at frame {int(np.argmin(finite))}")
    rotations = poses[:, :3, :3]
    # Every frame must be rigid (a hand that is not tracked carries the identity); 1e-3 allows float32 sources.
    orthogonal = np.abs(rotations @ rotations.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2)) <= 1e-3
    affine = np.abs(poses[:, 3] - (0.0, 0.0, 0.0, 1.0)).max(axis=1) <= 1e-6
    rigid = orthogonal & affine & (np.linalg.det(rotations) > 0)
    if not rigid.all():
        raise DatasetError(f"{where}: {name} is not a rigid transform at frame {int(np.argmin(rigid))}")


# -- the flat encoding ----------------------------------------------------------------------------
def pose_to_vector(poses: np.ndarray) -> np.ndarray:
    """(T, 4, 4) -> (T, 9): translation, then the rotation's first two columns (continuous, unlike angles)."""
    return np.concatenate([poses[:, :3, 3], poses[:, :3, 0], poses[:, :3, 1]], axis=1)


def vector_to_pose(vectors: np.ndarray) -> np.ndarray:
    """(T, 9) -> (T, 4, 4), the rotation rebuilt by Gram-Schmidt (a learned or rounded vector stays a rotation)."""
    vectors = np.asarray(vectors, np.float64)
    a, b = vectors[:, 3:6], vectors[:, 6:9]
    x = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b - (x * b).sum(1, keepdims=True) * x
    y = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    poses = np.tile(np.eye(4), (len(vectors), 1, 1))
    poses[:, :3, 0], poses[:, :3, 1], poses[:, :3, 2], poses[:, :3, 3] = x, y, np.cross(x, y), vectors[:, :3]
    return poses


def _transform(poses: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply per-frame (T, 4, 4) to (T, N, 3)."""
    return np.einsum("tij,tnj->tni", poses[:, :3, :3], points) + poses[:, None, :3, 3]


def encode_state(track: HandTrack) -> np.ndarray:
    """(T, 146) float64: both hands in the camera frame, STATE_NAMES order; an absent hand is zeros, confidence 0."""
    world_to_camera = np.linalg.inv(track.camera_pose)
    state = np.zeros((track.length, len(STATE_NAMES)))
    for s, side in enumerate(SIDES):
        hand = track.hands.get(side)
        if hand is None:
            continue
        tracked = np.asarray(hand.confidence) > 0
        points = _transform(world_to_camera, np.asarray(hand.keypoints, np.float64)).reshape(track.length, -1)
        wrist = pose_to_vector(world_to_camera @ hand.wrist_pose)
        block = np.concatenate([points, wrist, np.asarray(hand.confidence)[:, None]], axis=1)
        state[:, s * SIDE_WIDTH : (s + 1) * SIDE_WIDTH] = np.where(tracked[:, None], block, 0.0)
    return state


def intrinsics_vector(intrinsics: np.ndarray | None) -> np.ndarray:
    k = np.zeros((3, 3)) if intrinsics is None else np.asarray(intrinsics, np.float64)
    return np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]])


def track_features() -> dict[str, Feature]:
    """The low-dimensional features a hand-track dataset declares (the importer adds its camera)."""
    return {
        STATE_KEY: Feature("float32", (len(STATE_NAMES),), STATE_NAMES),
        CAMERA_POSE_KEY: Feature("float32", (len(POSE_NAMES),), POSE_NAMES),
        INTRINSICS_KEY: Feature("float32", (len(INTRINSICS_NAMES),), INTRINSICS_NAMES),
    }


def track_data(track: HandTrack) -> dict[str, np.ndarray]:
    """The per-frame values of `track_features` for one episode (float32, as the dataset stores them)."""
    return {
        STATE_KEY: encode_state(track).astype(np.float32),
        CAMERA_POSE_KEY: pose_to_vector(track.camera_pose).astype(np.float32),
        INTRINSICS_KEY: np.tile(intrinsics_vector(track.intrinsics), (track.length, 1)).astype(np.float32),
    }


def decode_state(state: np.ndarray, camera_pose: np.ndarray, intrinsics: np.ndarray | None, fps: float, text: str
                 ) -> HandTrack:
    """The inverse of `encode_state`: (T, 146) camera-frame state and (T, 4, 4) camera poses -> a world-frame track.
    A side whose confidence is 0 in every frame is left out (the source did not have it)."""
    state = np.asarray(state, np.float64)
    length = state.shape[0]
    hands = {}
    for s, side in enumerate(SIDES):
        block = state[:, s * SIDE_WIDTH : (s + 1) * SIDE_WIDTH]
        confidence = block[:, -1]
        if not (confidence > 0).any():
            continue
        tracked = confidence > 0
        points = block[:, : 3 * NUM_KEYPOINTS].reshape(length, NUM_KEYPOINTS, 3)
        identity = pose_to_vector(np.tile(np.eye(4), (length, 1, 1)))
        wrist = vector_to_pose(np.where(tracked[:, None], block[:, 3 * NUM_KEYPOINTS : -1], identity))
        hands[side] = HandFrames(_transform(camera_pose, points), camera_pose @ wrist, confidence)
    return HandTrack(hands, np.asarray(camera_pose, np.float64), intrinsics, fps, text)


def palm_frame(keypoints: np.ndarray, side: str) -> np.ndarray:
    """(T, 21, 3) -> (T, 4, 4) wrist poses for sources that store joints but no wrist rotation (DexYCB).

    Origin at the wrist; x from the wrist to the middle MCP; z = cross(x, index MCP - little MCP) for a right hand
    and its negative for a left one, so on both sides z points out of the back of the hand; y = z cross x. A
    degenerate frame (an untracked hand's zeros) gets the identity rotation.
    """
    index = {name: i for i, name in enumerate(KEYPOINTS)}
    wrist = keypoints[:, index["wrist"]]
    x = keypoints[:, index["middle_mcp"]] - wrist
    across = keypoints[:, index["index_mcp"]] - keypoints[:, index["little_mcp"]]
    z = np.cross(x, across) * (1.0 if side == "right" else -1.0)
    y = np.cross(z, x)
    poses = np.tile(np.eye(4), (len(keypoints), 1, 1))
    norms = [np.linalg.norm(v, axis=1) for v in (x, y, z)]
    good = np.all([n > 1e-9 for n in norms], axis=0)
    for column, (v, n) in enumerate(zip((x, y, z), norms)):
        poses[good, :3, column] = v[good] / n[good, None]
    poses[:, :3, 3] = wrist
    return poses
