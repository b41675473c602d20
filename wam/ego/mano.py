"""The MANO hand model: turns the MANO parameters some egocentric datasets store (ARCTIC, HOT3D) into the
canonical 21 keypoints and wrist pose of `wam.ego.hands`.

MANO's model files (MANO_RIGHT.pkl, MANO_LEFT.pkl) are licence-gated: wam can neither ship nor download
them. The user registers at https://mano.is.tue.mpg.de and points wam at the folder holding them, with the
environment variable WAM_MANO_DIR or an importer's `mano_dir` (`--mano-dir`). The files are Python 2
pickles of chumpy objects and a scipy sparse matrix; they are read here without chumpy (a stand-in keeps
the array a chumpy `Ch` holds in its `x`) and with scipy only when it is installed.

The forward model, written from the published description (Romero et al. 2017, "Embodied Hands"):

    betas (10)           shape: v_shaped = v_template + shapedirs . betas; joints J = J_regressor . v_shaped
    pose (16 x 3)        axis-angle, the global rotation then 15 finger joints; the finger part is the
                         dataset's 45 values (or PCA coefficients times hands_components) plus hands_mean
                         unless `flat_hand_mean`
    pose blend shapes    v_posed = v_shaped + posedirs . (R_1..15 - I), flattened
    kinematic chain      G_0 = [R_0 | J_0], G_i = G_parent(i) [R_i | J_i - J_parent(i)]; posed joint i = G_i's
                         translation: the global rotation turns the hand about its wrist joint J_0
    skinning             v = sum_i w_vi G_i [I | -J_i] v_posed (only the vertices asked for: the fingertips)
    trans                added to every joint and vertex last

MANO's 16 joints are ordered wrist, index 1-3, middle 1-3, little 1-3, ring 1-3, thumb 1-3 (its
kintree_table; confirmed by hand_tracking_toolkit's MANO_TO_CANONICAL_LANDMARK_MAPPING). The 5 tips are
vertices 744 (thumb), 320 (index), 443 (middle), 554 (ring), 671 (little), the ids smplx and
hand_tracking_toolkit use. The wrist pose is G_0 moved by trans: rotation R_0, translation the wrist keypoint.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.ego import hands
from wam.errors import DatasetError

MANO_DIR_ENV = "WAM_MANO_DIR"
MANO_FILES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}
NUM_JOINTS = 16
TIP_VERTICES = (744, 320, 443, 554, 671)  # thumb, index, middle, ring, little
# Rows of [16 MANO joints, 5 tips] in hands.KEYPOINTS order: MANO thumb 1-3 are the CMC, MCP and IP.
TO_KEYPOINTS = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
_SUBFOLDERS = ("", "models", "mano")  # the MANO download unpacks to mano_v1_2/models/


@dataclass
class ManoOutput:
    keypoints: np.ndarray  # (T, 21, 3) in hands.KEYPOINTS order
    wrist_pose: np.ndarray  # (T, 4, 4) wrist-to-parameter-frame
    vertices: np.ndarray  # (T, n, 3) the vertices asked for (none by default)


@dataclass
class ManoModel:
    """One hand's MANO model as float64 arrays; V vertices (778 in MANO), B shape components (10)."""

    side: str
    v_template: np.ndarray  # (V, 3) metres
    shapedirs: np.ndarray  # (V, 3, B)
    posedirs: np.ndarray  # (V, 3, 135)
    joint_regressor: np.ndarray  # (16, V)
    parents: np.ndarray  # (16,) int, parents[0] == -1, each parent before its child
    weights: np.ndarray  # (V, 16) skinning weights
    hands_components: np.ndarray  # (45, 45) PCA basis of the finger pose, one component a row
    hands_mean: np.ndarray  # (45,) the mean finger pose

    def finger_pose(self, values: np.ndarray, pca: bool = False, flat_hand_mean: bool = False) -> np.ndarray:
        """(T, 45) axis-angles of the 15 finger joints from a dataset's (T, 45) pose or (T, k) PCA coefficients;
        MANO's mean pose is added unless the dataset's poses are relative to a flat hand."""
        values = np.asarray(values, np.float64)
        pose = values @ self.hands_components[: values.shape[1]] if pca else values
        return pose if flat_hand_mean else pose + self.hands_mean

    def forward(self, global_orient: np.ndarray, finger_pose: np.ndarray, betas: np.ndarray, trans: np.ndarray,
                vertex_ids: tuple[int, ...] | np.ndarray = ()) -> ManoOutput:
        """Posed keypoints, wrist pose and `vertex_ids` vertices for (T, 3) global axis-angle, (T, 45) finger
        axis-angles (`finger_pose`'s output), (T, b) or (b,) betas and (T, 3) translation; `vertex_ids` asks for
        skinned vertices besides the tips (np.arange(778): the whole mesh)."""
        global_orient = np.asarray(global_orient, np.float64).reshape(-1, 3)
        length = len(global_orient)
        pose = np.concatenate([global_orient, np.asarray(finger_pose, np.float64).reshape(length, 45)], axis=1)
        rotations = rodrigues(pose.reshape(length, NUM_JOINTS, 3))  # (T, 16, 3, 3)
        betas = np.broadcast_to(np.asarray(betas, np.float64), (length, np.shape(betas)[-1]))
        betas = betas[:, : self.shapedirs.shape[2]]
        shapedirs = self.shapedirs[:, :, : betas.shape[1]]
        # J = J_regressor (v_template + shapedirs betas), without forming every shaped vertex.
        joints = self.joint_regressor @ self.v_template + np.einsum(
            "jcb,tb->tjc", np.einsum("jv,vcb->jcb", self.joint_regressor, shapedirs), betas)  # (T, 16, 3)
        chain = self._chain(rotations, joints)  # (T, 16, 4, 4)
        ids = np.concatenate([TIP_VERTICES, np.asarray(vertex_ids, np.int64).reshape(-1)])  # the tips always
        shaped = self.v_template[ids] + np.einsum("vcb,tb->tvc", shapedirs[ids], betas)  # (T, n, 3)
        pose_feature = (rotations[:, 1:] - np.eye(3)).reshape(length, -1)  # (T, 135)
        posed = shaped + np.einsum("vck,tk->tvc", self.posedirs[ids], pose_feature)
        skinning = chain.copy()
        skinning[:, :, :3, 3] -= np.einsum("tjab,tjb->tja", chain[:, :, :3, :3], joints)  # G_i [I | -J_i]
        blended = np.einsum("vj,tjab->tvab", self.weights[ids], skinning)  # (T, n, 4, 4)
        trans = np.asarray(trans, np.float64).reshape(length, 1, 3)
        vertices = np.einsum("tvab,tvb->tva", blended[:, :, :3, :3], posed) + blended[:, :, :3, 3] + trans
        posed_joints = chain[:, :, :3, 3] + trans
        tips = len(TIP_VERTICES)
        keypoints = np.concatenate([posed_joints, vertices[:, :tips]], axis=1)[:, TO_KEYPOINTS]
        wrist = chain[:, 0].copy()
        wrist[:, :3, 3] = posed_joints[:, 0]
        return ManoOutput(keypoints, wrist, vertices[:, tips:])

    def _chain(self, rotations: np.ndarray, joints: np.ndarray) -> np.ndarray:
        """World transforms G_i of the 16 joints down the kinematic tree."""
        length = len(rotations)
        chain = np.zeros((length, NUM_JOINTS, 4, 4))
        chain[:, :, 3, 3] = 1.0
        for joint, parent in enumerate(self.parents):
            local = np.zeros((length, 4, 4))
            local[:, :3, :3], local[:, 3, 3] = rotations[:, joint], 1.0
            local[:, :3, 3] = joints[:, joint] - (joints[:, parent] if parent >= 0 else 0.0)
            chain[:, joint] = local if parent < 0 else chain[:, parent] @ local
        return chain


def rodrigues(axis_angles: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3): R = I + sin(a) K + (1 - cos(a)) K^2, K the unit axis' cross matrix."""
    angle = np.linalg.norm(axis_angles, axis=-1, keepdims=True)
    axis = axis_angles / np.maximum(angle, 1e-12)  # a zero rotation's axis is zero, and R = I
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*axis.shape[:-1], 3, 3)
    sin, cos = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + sin * cross + (1.0 - cos) * (cross @ cross)


# -- loading ----------------------------------------------------------------------------------------
class _ChumpyStandIn:
    """What a pickled chumpy object becomes: the state chumpy would restore (a plain `Ch` keeps its array in `x`)."""

    def __init__(self, *args, **kwargs):
        self.state: dict = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


class _SparseStandIn:
    """A pickled scipy csc/csr matrix when scipy is not installed: its arrays, densified on request."""

    kind = ""

    def __init__(self, *args, **kwargs):
        self.state: dict = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}

    def dense(self) -> np.ndarray:
        state = self.state
        shape = tuple(state.get("_shape", state.get("shape", ())))
        data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
        major = shape[1] if self.kind == "csc" else shape[0]
        out = np.zeros(shape if self.kind == "csr" else shape[::-1])
        for line in range(major):
            out[line, indices[indptr[line]: indptr[line + 1]]] = data[indptr[line]: indptr[line + 1]]
        return out if self.kind == "csr" else out.T


class _ManoUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module.startswith("scipy.sparse"):
            try:
                import scipy.sparse

                return getattr(scipy.sparse, name)
            except (ImportError, AttributeError):
                if name not in ("csc_matrix", "csr_matrix"):
                    raise pickle.UnpicklingError(f"scipy is needed to read a pickled {module}.{name}") from None
                return type(name, (_SparseStandIn,), {"kind": name[:3]})
        return super().find_class(module, name)


def _array(path: Path, raw: dict, field: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """`raw[field]` as float64 of `shape` (None: any), whatever form the pickle holds it in."""
    if field not in raw:
        raise DatasetError(f"{path}: {field} missing (is this a MANO model file?)")
    value = raw[field]
    if isinstance(value, _ChumpyStandIn):
        if "x" not in value.state:
            raise DatasetError(f"{path}: {field} is a chumpy expression, not an array; wam reads plain chumpy arrays only")
        value = value.state["x"]
    if isinstance(value, _SparseStandIn):
        value = value.dense()
    elif hasattr(value, "toarray"):
        value = value.toarray()
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{path}: {field} is not numeric ({err})") from None
    if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape)):
        raise DatasetError(f"{path}: {field} has shape {array.shape}, expected {tuple('V' if s is None else s for s in shape)}")
    if not np.isfinite(array).all():
        raise DatasetError(f"{path}: {field} is not finite")
    return array


def load_mano(path: str | Path, side: str) -> ManoModel:
    """One MANO_*.pkl (a Python 2 pickle: read as latin-1, chumpy and scipy stood in for where absent)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = _ManoUnpickler(handle, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError) as err:
        raise DatasetError(f"{path}: not a readable MANO model file ({err})") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: not a MANO model file (holds a {type(raw).__name__}, not a dict)")
    template = _array(path, raw, "v_template", (None, 3))
    count = len(template)
    if count <= max(TIP_VERTICES):
        raise DatasetError(f"{path}: v_template has {count} vertices; MANO's fingertips need {max(TIP_VERTICES) + 1}")
    kintree = _array(path, raw, "kintree_table", (2, NUM_JOINTS)).astype(np.int64)
    parents = kintree[0].copy()
    parents[0] = -1  # MANO stores the root's parent as 2**32 - 1
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, NUM_JOINTS)):
        raise DatasetError(f"{path}: kintree_table does not list each joint after its parent: {kintree[0].tolist()}")
    shapedirs = _array(path, raw, "shapedirs", (count, 3, None))
    return ManoModel(
        side, template, shapedirs, _array(path, raw, "posedirs", (count, 3, (NUM_JOINTS - 1) * 9)),
        _array(path, raw, "J_regressor", (NUM_JOINTS, count)), parents,
        _array(path, raw, "weights", (count, NUM_JOINTS)), _array(path, raw, "hands_components", (None, 45)),
        _array(path, raw, "hands_mean", (45,)),
    )


def mano_directory(mano_dir: str | Path | None, dataset: str) -> Path:
    """The folder holding MANO_RIGHT.pkl / MANO_LEFT.pkl: `mano_dir`, else $WAM_MANO_DIR; DatasetError saying
    how to get them when neither is set."""
    chosen = mano_dir if mano_dir not in (None, "") else os.environ.get(MANO_DIR_ENV, "")
    if not chosen:
        raise DatasetError(
            f"{dataset} stores its hands as MANO parameters only, and MANO's model files are licence-gated "
            f"(register at https://mano.is.tue.mpg.de; wam cannot ship or download them). Set {MANO_DIR_ENV} "
            f"(or pass mano_dir / --mano-dir) to the folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl.")
    return Path(chosen).expanduser()


def load_models(mano_dir: str | Path | None, dataset: str, sides: tuple[str, ...] = hands.SIDES) -> dict[str, ManoModel]:
    """Both hands' models from `mano_directory` (or its models/ or mano/ subfolder, as the download unpacks)."""
    directory = mano_directory(mano_dir, dataset)
    models = {}
    for side in sides:
        found = next((directory / sub / MANO_FILES[side] for sub in _SUBFOLDERS
                      if (directory / sub / MANO_FILES[side]).is_file()), None)
        if found is None:
            raise DatasetError(f"{directory}: no {MANO_FILES[side]} in it (nor in models/ or mano/); {MANO_DIR_ENV} or "
                               f"--mano-dir must name the folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl")
        models[side] = load_mano(found, side)
    return models


def fix_left_shapedirs(models: dict[str, ManoModel]) -> dict[str, ManoModel]:
    """The published MANO_LEFT.pkl carries the right hand's first shapedirs column unmirrored (smplx issue 48);
    datasets fitted with the usual fix (HOT3D, via hand_tracking_toolkit) need it flipped, those fitted without
    it (ARCTIC) must not have it. Returns the models with the left one fixed when it has the bug."""
    left, right = models.get("left"), models.get("right")
    if left is None or right is None or np.abs(left.shapedirs[:, 0] - right.shapedirs[:, 0]).sum() >= 1:
        return models
    shapedirs = left.shapedirs.copy()
    shapedirs[:, 0] *= -1
    fixed = ManoModel(**{**left.__dict__, "shapedirs": shapedirs})
    return {**models, "left": fixed}
