"""The three rotation conversions the hand scenes' experts, retargeting and replay all need, in one place.

Rotations travel as the first two columns of their matrix (the continuous 6-D form the env's state holds) and move
as rotation vectors (the env's turn action); MuJoCo's quaternion routines do the maps, which stay exact near pi.
"""

from __future__ import annotations

import mujoco
import numpy as np


def from_6d(six: np.ndarray) -> np.ndarray:
    """The first two columns of a rotation (a state's r0..r5) -> the 3x3 matrix, re-orthonormalised (Gram-Schmidt)."""
    x = six[:3] / np.linalg.norm(six[:3])
    y = six[3:] - x * (x @ six[3:])
    y /= np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def log(rotation: np.ndarray) -> np.ndarray:
    """A rotation matrix as its rotation vector (axis times angle)."""
    quat, velocity = np.zeros(4), np.zeros(3)
    mujoco.mju_mat2Quat(quat, np.asarray(rotation, np.float64).reshape(-1))
    mujoco.mju_quat2Vel(velocity, quat, 1.0)
    return velocity


def exp(rotation_vector: np.ndarray) -> np.ndarray:
    """A rotation vector as its 3x3 matrix."""
    quat, matrix = np.zeros(4), np.zeros(9)
    angle = float(np.linalg.norm(rotation_vector))
    mujoco.mju_axisAngle2Quat(quat, np.asarray(rotation_vector, np.float64) / max(angle, 1e-12), angle)
    mujoco.mju_quat2Mat(matrix, quat)
    return matrix.reshape(3, 3)
