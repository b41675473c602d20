"""Guards the MANO forward model and the two importers that need it (ARCTIC, HOT3D-Clips). MANO's real files are
licence-gated, so a synthetic model in MANO's pickle layout (chumpy arrays, a scipy sparse J_regressor) is
written here; the zero pose gives its template joints, the global rotation and translation move the hand
rigidly, a finger joint turns its children about itself. Tiny ARCTIC trees and HOT3D clip tars in their real
layouts import into datasets whose state decodes back to the keypoints the model gives for the fixture's
parameters; a missing hand, a NaN or a frame-count mismatch skips that episode with a note naming the file and
field; without MANO files the import fails up front saying how to get them.
"""

from __future__ import annotations

import io
import json
import pickle
import sys
import tarfile
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from PIL import Image
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from wam.cli import app
from wam.data import Dataset, DatasetError
from wam.data.check import check_dataset
from wam.data.importers import convert_dataset, detect_format
from wam.data.layout import STATE_KEY
from wam.ego import hands, mano

runner = CliRunner()
VERTICES, LENGTH = 778, 5
PARENTS = (0, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
TIP_JOINT = {744: 15, 320: 3, 443: 6, 554: 12, 671: 9}  # each tip vertex skinned to its finger's last joint


# -- a synthetic MANO model in the real files' pickle layout ---------------------------------------
class _Ch:
    """Pickles as chumpy's `Ch` does (module chumpy.ch, its array in the state's `x`)."""

    def __init__(self, x):
        self.x = x

    def __getstate__(self):
        return {"x": self.x, "_dirty_vars": set(), "_itr": None}


def mano_fields(seed: int, shapedirs: np.ndarray | None = None) -> dict:
    rng = np.random.default_rng(seed)
    template = rng.uniform([-0.04, 0.0, -0.015], [0.04, 0.18, 0.015], (VERTICES, 3))
    regressor = np.zeros((16, VERTICES))
    for joint in range(16):
        regressor[joint, rng.choice(VERTICES, 6, replace=False)] = 1.0 / 6
    weights = np.zeros((VERTICES, 16))
    weights[np.arange(VERTICES), rng.integers(0, 16, VERTICES)] = 1.0
    for vertex, joint in TIP_JOINT.items():
        weights[vertex] = np.eye(16)[joint]
    return {
        "v_template": template, "J_regressor": scipy.sparse.csc_matrix(regressor), "weights": weights,
        "shapedirs": rng.normal(0, 0.004, (VERTICES, 3, 10)) if shapedirs is None else shapedirs,
        "posedirs": rng.normal(0, 0.002, (VERTICES, 3, 135)),
        "kintree_table": np.array([[2**32 - 1, *PARENTS[1:]], list(range(16))], np.int64),
        "hands_components": np.linalg.qr(rng.normal(size=(45, 45)))[0].T, "hands_mean": rng.normal(0, 0.15, 45),
        "f": np.zeros((1538, 3), np.uint32),
    }


def write_mano_dir(directory: Path, monkeypatch) -> dict[str, dict]:
    """MANO_RIGHT.pkl / MANO_LEFT.pkl under `directory/models` (as the download unpacks), with shapedirs as chumpy
    arrays; the left's first shapedirs column equals the right's, as in the published files (smplx issue 48)."""
    right = mano_fields(1)
    left_dirs = np.random.default_rng(9).normal(0, 0.004, (VERTICES, 3, 10))
    left_dirs[:, 0] = right["shapedirs"][:, 0]
    fields = {"right": right, "left": mano_fields(2, left_dirs)}
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    ch.Ch, _Ch.__module__, _Ch.__qualname__ = _Ch, "chumpy.ch", "Ch"
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    (directory / "models").mkdir(parents=True)
    for side, raw in fields.items():
        with open(directory / "models" / mano.MANO_FILES[side], "wb") as handle:
            pickle.dump({**raw, "shapedirs": _Ch(raw["shapedirs"])}, handle, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")
    return fields


@pytest.fixture
def mano_dir(tmp_path, monkeypatch) -> Path:
    write_mano_dir(tmp_path / "mano_v1_2", monkeypatch)
    monkeypatch.setenv(mano.MANO_DIR_ENV, str(tmp_path / "mano_v1_2"))
    return tmp_path / "mano_v1_2"


def by_name(joints: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The 21 keypoints of MANO joints (16, 3) and tip vertices, written out by name (MANO: wrist, index, middle,
    little, ring, thumb, three joints each)."""
    mano_joint = {"wrist": 0, "thumb_cmc": 13, "thumb_mcp": 14, "thumb_ip": 15}
    for finger, first in (("index", 1), ("middle", 4), ("little", 7), ("ring", 10)):
        mano_joint.update({f"{finger}_mcp": first, f"{finger}_pip": first + 1, f"{finger}_dip": first + 2})
    tips = {"thumb_tip": 744, "index_tip": 320, "middle_tip": 443, "ring_tip": 554, "little_tip": 671}
    return np.stack([template[tips[k]] if k in tips else joints[mano_joint[k]] for k in hands.KEYPOINTS])


# -- the model --------------------------------------------------------------------------------------
def test_loads_chumpy_pickles_with_or_without_scipy(tmp_path, monkeypatch):
    fields = write_mano_dir(tmp_path, monkeypatch)
    model = mano.load_models(tmp_path, "test")["right"]
    np.testing.assert_array_equal(model.shapedirs, fields["right"]["shapedirs"])
    np.testing.assert_array_equal(model.joint_regressor, fields["right"]["J_regressor"].toarray())
    assert model.parents.tolist() == [-1, *PARENTS[1:]]
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)  # as if scipy were not installed
    without = mano.load_mano(tmp_path / "models" / "MANO_RIGHT.pkl", "right")
    np.testing.assert_array_equal(without.joint_regressor, model.joint_regressor)
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps({"v_template": np.zeros((778, 3))}))
    with pytest.raises(DatasetError, match="bad.pkl: kintree_table missing"):
        mano.load_mano(tmp_path / "bad.pkl", "right")


def test_zero_pose_is_the_template_and_the_hand_moves_rigidly(tmp_path, monkeypatch):
    fields = write_mano_dir(tmp_path, monkeypatch)["right"]
    model = mano.load_models(tmp_path, "test")["right"]
    zeros = np.zeros((1, 45))
    rest = model.forward(np.zeros((1, 3)), model.finger_pose(zeros, flat_hand_mean=True), np.zeros(10), np.zeros((1, 3)))
    joints = fields["J_regressor"].toarray() @ fields["v_template"]
    np.testing.assert_allclose(rest.keypoints[0], by_name(joints, fields["v_template"]), atol=1e-12)
    np.testing.assert_allclose(rest.wrist_pose[0], np.block([[np.eye(3), joints[0][:, None]], [0, 0, 0, 1]]), atol=1e-12)

    angle = np.array([[0.3, -1.1, 0.7]])
    shift = np.array([[0.2, -0.1, 0.5]])
    turned = model.forward(angle, model.finger_pose(zeros, flat_hand_mean=True), np.zeros(10), shift)
    rotation = Rotation.from_rotvec(angle[0]).as_matrix()
    expected = (rest.keypoints[0] - joints[0]) @ rotation.T + joints[0] + shift
    np.testing.assert_allclose(turned.keypoints[0], expected, atol=1e-12)
    np.testing.assert_allclose(turned.wrist_pose[0, :3, :3], rotation, atol=1e-12)
    np.testing.assert_allclose(turned.wrist_pose[0, :3, 3], joints[0] + shift[0], atol=1e-12)


def test_a_finger_joint_turns_its_children_about_itself(tmp_path, monkeypatch):
    write_mano_dir(tmp_path, monkeypatch)
    model = mano.load_models(tmp_path, "test")["right"]
    pose = np.zeros((1, 45))
    pose[0, 0:3] = [0.0, 0.0, 0.8]  # index1, the first of the 15 finger joints
    rest = model.forward(np.zeros((1, 3)), np.zeros((1, 45)), np.zeros(10), np.zeros((1, 3))).keypoints[0]
    bent = model.forward(np.zeros((1, 3)), pose, np.zeros(10), np.zeros((1, 3))).keypoints[0]
    index = [hands.KEYPOINTS.index(f"index_{j}") for j in ("mcp", "pip", "dip", "tip")]
    joints = [i for i, name in enumerate(hands.KEYPOINTS) if i not in index and not name.endswith("_tip")]
    np.testing.assert_allclose(bent[joints], rest[joints], atol=1e-12)
    rotation = Rotation.from_rotvec([0.0, 0.0, 0.8]).as_matrix()
    pivot = rest[index[0]]
    np.testing.assert_allclose(bent[index[:3]], (rest[index[:3]] - pivot) @ rotation.T + pivot, atol=1e-12)
    # A tip is a vertex: its pose blend shape (posedirs . (R - I), row-major) moves it before it is skinned.
    offset = model.posedirs[320, :, :9] @ (rotation - np.eye(3)).reshape(-1)
    np.testing.assert_allclose(bent[index[3]], (rest[index[3]] + offset - pivot) @ rotation.T + pivot, atol=1e-12)
    flat = replace(model, posedirs=np.zeros_like(model.posedirs))  # without blend shapes the other tips stay still
    still = [i for i in range(21) if i not in index]
    np.testing.assert_allclose(flat.forward(np.zeros((1, 3)), pose, np.zeros(10), np.zeros((1, 3))).keypoints[0, still],
                               rest[still], atol=1e-12)  # (at rest the blend shapes are zero)
    coefficients = np.random.default_rng(0).normal(size=(2, 15))
    np.testing.assert_allclose(model.finger_pose(coefficients, pca=True),
                               coefficients @ model.hands_components[:15] + model.hands_mean)


def test_without_mano_files_the_import_fails_up_front(tmp_path, monkeypatch):
    monkeypatch.delenv(mano.MANO_DIR_ENV, raising=False)
    with pytest.raises(DatasetError, match="HOT3D stores its hands as MANO parameters only.*licence-gated.*WAM_MANO_DIR"):
        mano.load_models(None, "HOT3D")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no MANO_LEFT.pkl in it"):
        mano.load_models(tmp_path / "empty", "ARCTIC")
    write_arctic(tmp_path / "arctic", "s01", "box_grab_01")
    result = runner.invoke(app, ["data", "import-ego", "arctic", str(tmp_path / "arctic"), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "ARCTIC stores its hands as MANO parameters only" in result.output
    assert not (tmp_path / "out").exists()


def test_the_left_shapedirs_fix_flips_only_the_published_bug(tmp_path, monkeypatch):
    write_mano_dir(tmp_path, monkeypatch)
    models = mano.load_models(tmp_path, "test")
    fixed = mano.fix_left_shapedirs(models)
    np.testing.assert_array_equal(fixed["left"].shapedirs[:, 0], -models["right"].shapedirs[:, 0])
    np.testing.assert_array_equal(fixed["left"].shapedirs[:, 1:], models["left"].shapedirs[:, 1:])
    assert mano.fix_left_shapedirs(fixed)["left"] is fixed["left"]  # already mirrored: left alone


# -- ARCTIC -----------------------------------------------------------------------------------------
def arctic_params(seed: int, length: int = LENGTH) -> dict:
    rng = np.random.default_rng(seed)
    params = {}
    for s, side in enumerate(hands.SIDES):
        params[side] = {
            "rot": rng.normal(0, 0.5, (length, 3)).astype(np.float32),
            "pose": rng.normal(0, 0.3, (length, 45)).astype(np.float32),
            "trans": (rng.normal(0, 0.02, (length, 3)) + [0.15 * (2 * s - 1), 0.1, 0.45]).astype(np.float32),
            "shape": rng.normal(0, 1, 10).astype(np.float32), "fitting_err": np.zeros(length, np.float32),
        }
    return params


def write_arctic(root: Path, subject: str, sequence: str, length: int = LENGTH, offset: int = 2,
                 drop: str | None = None, nan: str | None = None, camera_frames: int | None = None,
                 missing_image: int | None = None) -> dict:
    """raw_seqs/<subject>/<seq>.mano.npy + .egocam.dist.npy, images/<subject>/<seq>/0/<t + offset>.jpg (and two
    unlabelled images before them) and meta/misc.json; returns the parameters and camera written."""
    params = arctic_params(len(sequence) + ord(subject[-1]), length)
    if nan:
        side, key = nan.split(".")
        params[side][key][2, 1] = np.nan
    raw = root / "raw_seqs" / subject
    raw.mkdir(parents=True, exist_ok=True)
    np.save(raw / f"{sequence}.mano.npy", {k: v for k, v in params.items() if k != drop}, allow_pickle=True)
    frames = camera_frames or length
    rotations = Rotation.from_rotvec(np.linspace([0, 0, 0], [0.1, 0.2, 0.05], frames)).as_matrix()
    translations = np.linspace([0.0, 0.0, 0.0], [0.02, -0.01, 0.03], frames)[:, :, None]
    np.save(raw / f"{sequence}.egocam.dist.npy", {
        "R_k_cam_np": rotations.astype(np.float32), "T_k_cam_np": translations.astype(np.float32),
        "intrinsics": np.array([[60.0, 0, 28.0], [0, 60.0, 20.0], [0, 0, 1]], np.float32),
        "dist8": np.zeros(8, np.float32), "R0": np.eye(3), "T0": np.zeros((3, 1))}, allow_pickle=True)
    images = root / "images" / subject / sequence / "0"
    images.mkdir(parents=True, exist_ok=True)
    for i in range(length + offset):
        if i - offset != missing_image:
            Image.fromarray(np.full((40, 56, 3), 20 * i, np.uint8)).save(images / f"{i:05d}.jpg")
    misc = root / "meta" / "misc.json"
    misc.parent.mkdir(parents=True, exist_ok=True)
    table = json.loads(misc.read_text()) if misc.is_file() else {}
    misc.write_text(json.dumps({**table, subject: {"ioi_offset": offset, "gender": "female"}}))
    return {"params": params, "world_to_camera": (rotations, translations[:, :, 0])}


def decoded(data: Dataset, episode: int) -> hands.HandTrack:
    low = data.low_dim(episode)
    return hands.decode_state(low[STATE_KEY], hands.vector_to_pose(low[hands.CAMERA_POSE_KEY]), None, 30, "")


def test_arctic_round_trip_and_corrupt_sequences_are_skipped(tmp_path, mano_dir):
    models = mano.load_models(mano_dir, "test")
    src = tmp_path / "arctic_data" / "data"
    good = write_arctic(src, "s01", "box_grab_01")
    write_arctic(src, "s01", "box_use_02", drop="left")
    write_arctic(src, "s02", "phone_grab_01", nan="right.pose")
    write_arctic(src, "s02", "mixer_use_01", camera_frames=LENGTH - 1)
    write_arctic(src, "s02", "ketchup_grab_01", missing_image=3)
    assert detect_format(src) == "arctic"
    result = convert_dataset(src, tmp_path / "out", size=20)
    assert (result.episodes, result.frames, result.fps, result.tasks) == (1, LENGTH, 30, ["grab the box"])
    notes = "\n".join(result.notes)
    assert "box_use_02.mano.npy: left missing" in notes
    assert "phone_grab_01.mano.npy: right.pose is NaN or infinite at frame 2" in notes
    assert "mixer_use_01.egocam.dist.npy: R_k_cam_np has 4 frames, the .mano.npy 5" in notes
    assert "ketchup_grab_01/0/00005.jpg: missing" in notes
    assert "pinhole approximation" in notes

    data = Dataset(tmp_path / "out")
    back = decoded(data, 0)
    rotations, translations = good["world_to_camera"]
    world_to_camera = np.tile(np.eye(4), (LENGTH, 1, 1))
    world_to_camera[:, :3, :3], world_to_camera[:, :3, 3] = rotations, translations
    np.testing.assert_allclose(back.camera_pose, np.linalg.inv(world_to_camera.astype(np.float32)), atol=2e-6)
    for side in hands.SIDES:  # ARCTIC's left model is used as published (no shapedirs fix)
        p = {k: np.asarray(v, np.float64) for k, v in good["params"][side].items()}
        model = models[side]
        expected = model.forward(p["rot"], model.finger_pose(p["pose"]), p["shape"], p["trans"])
        np.testing.assert_allclose(back.hands[side].keypoints, expected.keypoints, atol=1e-5)
        np.testing.assert_allclose(back.hands[side].wrist_pose, expected.wrist_pose, atol=1e-5)
        assert (back.hands[side].confidence == 1).all()
    # 40x56 frames written 20 pixels high: K halves.
    np.testing.assert_allclose(data.low_dim(0)[hands.INTRINSICS_KEY][0], [30.0, 30.0, 14.0, 10.0], atol=1e-4)
    assert data.frames(0).shape == (LENGTH, 20, 28, 3) and data.episodes[0].info["image_offset"] == 2
    assert check_dataset(tmp_path / "out") == []


# -- HOT3D ------------------------------------------------------------------------------------------
def hot3d_frame(rng, frame: int, sides: tuple[str, ...]) -> tuple[dict, dict]:
    """(cameras.json, hands.json) of one frame: an Aria RGB and a monochrome stream, each hand's MANO pose."""
    quaternion = Rotation.from_rotvec([0.05 * frame, 0.1, 0.0]).as_quat()  # x, y, z, w
    calibration = {"label": "camera-rgb", "stream_id": "214-1", "serial_number": "x", "image_width": 48,
                   "image_height": 48, "projection_model_type": "CameraModelType.FISHEYE624",
                   "projection_params": [30.0, 24.0, 22.0] + [0.01] * 12, "max_solid_angle": 1.5,
                   "T_device_from_camera": {"translation_xyz": [0, 0, 0], "quaternion_wxyz": [1, 0, 0, 0]}}
    pose = {"translation_xyz": [0.01 * frame, 1.5, 0.0], "quaternion_wxyz": [quaternion[3], *quaternion[:3]]}
    cameras = {"214-1": {"calibration": calibration, "T_world_from_camera": pose},
               "1201-1": {"calibration": {**calibration, "projection_params": [1.0] * 16}, "T_world_from_camera": pose}}
    labels = {side: {"mano_pose": {"thetas": rng.normal(0, 1, 15).tolist(),
                                   "wrist_xform": [*rng.normal(0, 0.5, 3), 0.2 * (i - 0.5), 1.4, 0.4]},
                     "umetrack_pose": {"joint_angles": [0.0] * 20}} for i, side in enumerate(sides)}
    return cameras, labels


def write_clip(path: Path, seed: int, left_missing: tuple[int, ...] = (3,), drop_hands_json: int | None = None,
               nan_thetas: bool = False, no_wrist: bool = False) -> tuple[list[dict], list[dict], list[float]]:
    """clip-<id>.tar in HOT3D-Clips' layout; returns the cameras and hands written per frame and the betas."""
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    betas = rng.normal(0, 1, 10).tolist()
    members["__hand_shapes.json__"] = json.dumps({"mano": betas, "umetrack": {}}).encode()
    cameras, labels = [], []
    for frame in range(LENGTH):
        sides = tuple(s for s in hands.SIDES if not (s == "left" and frame in left_missing))
        camera, label = hot3d_frame(rng, frame, sides)
        if nan_thetas and frame == 1:
            label["right"]["mano_pose"]["thetas"][4] = float("nan")
        if no_wrist and frame == 2:
            del label["right"]["mano_pose"]["wrist_xform"]
        cameras.append(camera)
        labels.append(label)
        key = f"{frame:06d}"
        members[f"{key}.cameras.json"] = json.dumps(camera).encode()
        if frame != drop_hands_json:
            members[f"{key}.hands.json"] = json.dumps(label).encode()
        members[f"{key}.objects.json"] = b"{}"
        for stream, mode in (("214-1", "RGB"), ("1201-1", "L")):
            image = io.BytesIO()
            Image.new(mode, (48, 48), 40 * frame).save(image, "JPEG")
            members[f"{key}.image_{stream}.jpg"] = image.getvalue()
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return cameras, labels, betas


def test_hot3d_round_trip_and_corrupt_clips_are_skipped(tmp_path, mano_dir):
    models = mano.load_models(mano_dir, "test")
    src = tmp_path / "train_aria"
    src.mkdir()
    cameras, labels, betas = write_clip(src / "clip-000001.tar", 1)
    write_clip(src / "clip-000002.tar", 2, drop_hands_json=3)
    write_clip(src / "clip-000003.tar", 3, nan_thetas=True)
    write_clip(src / "clip-000004.tar", 4, no_wrist=True)
    assert detect_format(src) == "hot3d" and detect_format(src / "clip-000001.tar") == "hot3d"
    result = convert_dataset(src, tmp_path / "out", "hot3d", size=24, task="stack the blocks")
    assert (result.episodes, result.frames, result.fps) == (1, LENGTH, 30)
    notes = "\n".join(result.notes)
    assert "clip-000002.tar: 000003.hands.json missing (5 frames of image_214-1" in notes
    assert "clip-000003.tar: 000001.hands.json: right.mano_pose.thetas is NaN or infinite" in notes
    assert "clip-000004.tar: 000002.hands.json: right.mano_pose.wrist_xform missing" in notes
    assert "FISHEYE624" in notes

    data = Dataset(tmp_path / "out")
    back = decoded(data, 0)
    expected_camera = [np.block([[Rotation.from_quat([*c["214-1"]["T_world_from_camera"]["quaternion_wxyz"][1:],
                                                      c["214-1"]["T_world_from_camera"]["quaternion_wxyz"][0]]).as_matrix(),
                                  np.array(c["214-1"]["T_world_from_camera"]["translation_xyz"])[:, None]],
                                 [0, 0, 0, 1]]) for c in cameras]
    np.testing.assert_allclose(back.camera_pose, expected_camera, atol=2e-6)
    left = replace(models["left"], shapedirs=models["left"].shapedirs.copy())
    left.shapedirs[:, 0] *= -1  # HOT3D's hands were fitted with the left model's shapedirs bug fixed
    for side, model in (("right", models["right"]), ("left", left)):
        tracked = np.array([side in label for label in labels])
        thetas = np.stack([label[side]["mano_pose"]["thetas"] if side in label else np.zeros(15) for label in labels])
        wrist = np.stack([label[side]["mano_pose"]["wrist_xform"] if side in label else np.zeros(6) for label in labels])
        expected = model.forward(wrist[:, :3], model.finger_pose(thetas, pca=True), np.array(betas), wrist[:, 3:])
        np.testing.assert_array_equal(back.hands[side].confidence, tracked.astype(float))
        np.testing.assert_allclose(back.hands[side].keypoints[tracked], expected.keypoints[tracked], atol=1e-5)
        np.testing.assert_allclose(back.hands[side].wrist_pose[tracked], expected.wrist_pose[tracked], atol=1e-5)
    np.testing.assert_allclose(data.low_dim(0)[hands.INTRINSICS_KEY][0], [15.0, 15.0, 12.0, 11.0], atol=1e-4)
    assert data.tasks == ["stack the blocks"] and data.episodes[0].info["stream"] == "214-1"
    assert check_dataset(tmp_path / "out") == []


def test_import_ego_hot3d_takes_mano_dir_and_skips_a_clip_without_hands(tmp_path, mano_dir, monkeypatch):
    monkeypatch.delenv(mano.MANO_DIR_ENV)
    src = tmp_path / "test_aria"
    src.mkdir()
    write_clip(src / "clip-000007.tar", 7)
    with tarfile.open(src / "clip-000008.tar", "w") as tar:  # a test clip: images and cameras, no hands
        info = tarfile.TarInfo("000000.image_214-1.jpg")
        info.size = 0
        tar.addfile(info, io.BytesIO(b""))
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "import-ego", "hot3d", str(src), "--out", str(out), "--size", "16",
                                 "--mano-dir", str(mano_dir)])
    assert result.exit_code == 0, result.output
    assert "clip-000008.tar: no hands.json" in result.output and "from hot3d: 1 episodes" in result.output
    assert Dataset(out).camera_size("observation.images.ego") == (16, 16)
    result = runner.invoke(app, ["data", "convert", str(src), "--out", str(tmp_path / "other"), "--format", "egodex",
                                 "--mano-dir", str(mano_dir)])
    assert result.exit_code != 0 and "mano_dir apply to arctic and hot3d" in result.output
