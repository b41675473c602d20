"""Guards the egocentric-video importers and the canonical hand track: tiny EgoDex and DexYCB sources written here
in their real layouts (h5py, npz, wam's own mp4 writer) import into wam datasets whose state is exactly the
canonical encoding of the joints the fixture put there; a missing joint, a NaN transform or a frame-count mismatch
skips that episode with a note naming the file and the joint while the good ones import; `wam data check` passes.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from wam.cli import app
from wam.data import Dataset, DatasetError
from wam.data.check import check_dataset
from wam.data.importers import convert_dataset, detect_format
from wam.data.video import encode_video
from wam.ego import hands
from wam.ego.egodex import ARKIT_TO_OPENCV, CAMERA_KEY, arkit_joints

runner = CliRunner()
FPS, SIZE, LENGTH = 30, 32, 6
K = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 16.0], [0.0, 0.0, 1.0]])


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _pose(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, translation
    return pose


def moving_hands(length: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ARKit camera poses (T, 4, 4) and every hand joint's world transform (T, 4, 4): each hand a rigid skeleton
    (the 25 joints at fixed offsets from the wrist) turning and sliding half a metre in front of the camera."""
    camera = np.stack([_pose(_rotation_y(0.02 * t), np.array([0.01 * t, 1.5, 0.0])) for t in range(length)])
    joints: dict[str, np.ndarray] = {}
    for s, side in enumerate(("left", "right")):
        names = [f"{side}Hand"] + [n for n in _all_arkit(side) if n != f"{side}Hand"]
        offsets = np.random.default_rng(seed * 10 + s).uniform(-0.08, 0.08, (len(names), 3))
        offsets[0] = 0.0
        for t in range(length):
            rotation = _rotation_y(0.1 * t + s + seed)
            wrist = np.array([(-0.15 if side == "left" else 0.15) + 0.01 * t, 1.4, -0.5 - 0.01 * t])
            for name, offset in zip(names, offsets):
                joints.setdefault(name, np.zeros((length, 4, 4)))[t] = _pose(rotation, wrist + rotation @ offset)
    return camera, joints


def _all_arkit(side: str) -> list[str]:
    """The 25 joints of one side as EgoDex names them: the 21 the importer reads plus the 4 finger metacarpals."""
    return list(arkit_joints(side)) + [f"{side}{f}FingerMetacarpal" for f in ("Index", "Middle", "Ring", "Little")]


def write_egodex_episode(directory: Path, index: int, length: int = LENGTH, video_length: int | None = None,
                         drop: str | None = None, nan: str | None = None, confidences: bool = True,
                         text: str = "pour water into the cup") -> dict[str, np.ndarray]:
    """`<index>.hdf5` + `<index>.mp4` in EgoDex's layout; returns what was written (camera, joints, confidences)."""
    directory.mkdir(parents=True, exist_ok=True)
    camera, joints = moving_hands(length, index)
    rng = np.random.default_rng(index)
    written = {"camera": camera, **joints}
    with h5py.File(directory / f"{index}.hdf5", "w") as handle:
        handle["camera/intrinsic"] = K.astype(np.float32)
        handle["transforms/camera"] = camera.astype(np.float32)
        handle["transforms/hip"] = np.tile(np.eye(4, dtype=np.float32), (length, 1, 1))  # a body joint, not read
        for name, values in joints.items():
            if name == drop:
                continue
            values = values.astype(np.float32)
            if name == nan:
                values[2, 0, 3] = np.nan
            handle[f"transforms/{name}"] = values
            if confidences:
                written[f"conf/{name}"] = rng.uniform(0.5, 1.0, length).astype(np.float32)
                handle[f"confidences/{name}"] = written[f"conf/{name}"]
        handle.attrs["llm_description" if confidences else "description"] = text
    frames = np.random.default_rng(index).integers(0, 255, (video_length or length, SIZE, SIZE, 3), dtype=np.uint8)
    encode_video(frames, directory / f"{index}.mp4", FPS)
    return written


def expected_track(written: dict[str, np.ndarray], intrinsics: np.ndarray) -> hands.HandTrack:
    """The canonical track of a fixture, built from what was written (float32, as the file holds it)."""
    camera = written["camera"].astype(np.float32).astype(np.float64)
    track_hands = {}
    for side in hands.SIDES:
        names = arkit_joints(side)
        stacked = np.stack([written[n].astype(np.float32).astype(np.float64) for n in names], axis=1)
        confidence = np.mean([written[f"conf/{n}"] for n in names], axis=0) if f"conf/{names[0]}" in written else np.ones(len(camera))
        track_hands[side] = hands.HandFrames(stacked[:, :, :3, 3].copy(), stacked[:, 0].copy(), confidence)
    return hands.HandTrack(track_hands, camera @ ARKIT_TO_OPENCV, intrinsics, FPS, "")


# -- the canonical track ---------------------------------------------------------------------------
def test_keypoint_names_follow_the_mano_order():
    assert len(hands.KEYPOINTS) == 21 and hands.KEYPOINTS[:5] == ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    assert hands.KEYPOINTS[-4:] == ("little_mcp", "little_pip", "little_dip", "little_tip")
    assert len(hands.STATE_NAMES) == 146 and hands.STATE_NAMES.index("right.index_tip.x") == 73 + 3 * 8
    assert arkit_joints("right")[8] == "rightIndexFingerTip" and arkit_joints("left")[1] == "leftThumbKnuckle"


def test_state_round_trips_through_decode_and_names_bad_fields():
    camera, joints = moving_hands(5, seed=3)
    written = {"camera": camera, **joints}
    track = expected_track(written, K)
    track.validate("fixture")
    state = hands.encode_state(track)
    back = hands.decode_state(state, track.camera_pose, K, FPS, "")
    for side in hands.SIDES:
        np.testing.assert_allclose(back.hands[side].keypoints, track.hands[side].keypoints, atol=1e-9)
        np.testing.assert_allclose(back.hands[side].wrist_pose, track.hands[side].wrist_pose, atol=1e-9)
    # The state is in the camera's OpenCV frame: the camera is not rotated at frame 0, so x is as in the world,
    # y flips (down) and z is the distance in front of it.
    wrist = joints["rightHand"][0, :3, 3] - camera[0, :3, 3]
    got = state[0, [hands.STATE_NAMES.index(f"right.wrist.{a}") for a in "xyz"]]
    np.testing.assert_allclose(got, [wrist[0], -wrist[1], -wrist[2]], atol=1e-6)
    assert got[2] > 0
    track.hands["left"].wrist_pose[3, 0, 3] = np.nan
    with pytest.raises(DatasetError, match="fixture: left.wrist_pose is not finite at frame 3"):
        track.validate("fixture")
    track.hands["left"].wrist_pose[3, 0, 3] = 0.0
    track.hands["right"].confidence = track.hands["right"].confidence[:4]
    with pytest.raises(DatasetError, match=r"right.confidence must be \(5,\)"):
        track.validate("fixture")


# -- EgoDex ----------------------------------------------------------------------------------------
def test_egodex_round_trip_and_corrupt_episodes_are_skipped(tmp_path):
    src = tmp_path / "egodex" / "part1"
    written = write_egodex_episode(src / "pour_water", 0)
    old = write_egodex_episode(src / "pour_water", 1, confidences=False, text="an older episode")
    write_egodex_episode(src / "fold_towel", 0, drop="leftMiddleFingerIntermediateTip")
    write_egodex_episode(src / "fold_towel", 1, nan="rightThumbTip")
    write_egodex_episode(src / "fold_towel", 2, video_length=LENGTH - 1)
    assert detect_format(tmp_path / "egodex") == "egodex"
    assert detect_format(src / "pour_water" / "0.hdf5") == "egodex"

    out = tmp_path / "out"
    result = convert_dataset(tmp_path / "egodex", out, "egodex", size=16)
    assert (result.episodes, result.frames, result.fps) == (2, 2 * LENGTH, FPS)
    assert result.cameras == {CAMERA_KEY: (16, 16)}
    notes = "\n".join(result.notes)
    assert "fold_towel/0.hdf5: transforms/leftMiddleFingerIntermediateTip missing" in notes
    assert "fold_towel/1.hdf5: transforms/rightThumbTip is NaN or infinite at frame 2" in notes
    assert "fold_towel/2.mp4: 5 video frames, 2.hdf5 transforms/camera has 6" in notes
    assert len(result.notes) == 3  # the good episodes have nothing to say (their hands are in front of the camera)

    data = Dataset(out)
    assert not data.has_actions and data.tasks == ["pour water into the cup", "an older episode"]
    assert data.features["observation.state"].names == hands.STATE_NAMES
    for episode, source in enumerate((written, old)):
        low = data.low_dim(episode)
        track = expected_track(source, np.diag([0.5, 0.5, 1.0]) @ K)  # 32 -> 16 pixels halves the intrinsics
        np.testing.assert_allclose(low["observation.state"], hands.encode_state(track), atol=2e-6)
        np.testing.assert_allclose(low[hands.INTRINSICS_KEY][0], [15.0, 15.0, 8.0, 8.0])
        np.testing.assert_allclose(hands.vector_to_pose(low[hands.CAMERA_POSE_KEY]), track.camera_pose, atol=2e-6)
        assert data.frames(episode).shape == (LENGTH, 16, 16, 3)
    assert data.episodes[1].info["has_confidences"] is False
    assert check_dataset(out) == []


def test_egodex_all_bad_is_an_error_naming_the_directory_and_nothing_is_left(tmp_path):
    src = tmp_path / "egodex"
    write_egodex_episode(src / "task", 0, nan="leftHand")
    with pytest.raises(DatasetError, match=rf"(?s){src}: none of its 1 EgoDex episode\(s\) imported.*transforms/leftHand"):
        convert_dataset(src, tmp_path / "out", "egodex")
    assert not (tmp_path / "out").exists()


def test_import_ego_command_writes_a_checked_dataset(tmp_path):
    src = tmp_path / "egodex"
    write_egodex_episode(src / "task", 0)
    (src / "task" / "7.mp4").write_bytes(b"")  # a video without its hdf5
    result = runner.invoke(app, ["data", "import-ego", "egodex", str(src), "--out", str(tmp_path / "out"), "--size", "32"])
    assert result.exit_code == 0, result.output
    assert "7.mp4: no 7.hdf5 beside it" in result.output and "1 episodes" in result.output
    assert runner.invoke(app, ["data", "check", str(tmp_path / "out")]).exit_code == 0
    assert Dataset(tmp_path / "out").camera_size(CAMERA_KEY) == (32, 32)


def test_a_camera_in_the_wrong_axes_gets_a_note(tmp_path):
    """A camera pose stored with OpenCV's axes instead of ARKit's puts the hands behind the camera: say so."""
    src = tmp_path / "egodex"
    written = write_egodex_episode(src / "task", 0)
    with h5py.File(src / "task" / "0.hdf5", "r+") as handle:
        handle["transforms/camera"][...] = (written["camera"] @ ARKIT_TO_OPENCV).astype(np.float32)
    result = runner.invoke(app, ["data", "convert", str(src), "--out", str(tmp_path / "out"), "--size", "16"])
    assert result.exit_code == 0, result.output
    assert "0.hdf5: the hands are behind the camera in most frames" in result.output
    assert "from egodex: 1 episodes" in result.output


# -- DexYCB ----------------------------------------------------------------------------------------
def write_dexycb_camera(directory: Path, length: int, side: str, missing: tuple[int, ...] = ()) -> np.ndarray:
    """`labels_XXXXXX.npz` + `color_XXXXXX.jpg` per frame and the sequence's meta.yml; returns joint_3d (T, 21, 3)."""
    directory.mkdir(parents=True)
    (directory.parent / "meta.yml").write_text(yaml.safe_dump({"mano_sides": [side], "num_frames": length}))
    _, joints = moving_hands(length, seed=5)
    world = np.stack([joints[n][:, :3, 3] for n in arkit_joints(side)], axis=1)
    camera = world - [0.0, 1.5, 0.0]
    points = camera * [1, -1, -1]  # in front of a camera looking down +z
    for t in range(length):
        joint_3d = np.full((1, 21, 3), -1.0, np.float32) if t in missing else points[None, t].astype(np.float32)
        uv = points[t, :, :2] / points[t, :, 2:] * 30.0 + [32.0, 24.0]
        np.savez(directory / f"labels_{t:06d}.npz", joint_3d=joint_3d, joint_2d=uv[None].astype(np.float32),
                 pose_m=np.zeros((1, 51), np.float32))
        Image.fromarray(np.full((48, 64, 3), 10 * t, np.uint8)).save(directory / f"color_{t:06d}.jpg")
    return points


def test_dexycb_round_trip(tmp_path):
    src = tmp_path / "dexycb"
    points = write_dexycb_camera(src / "subject-01" / "seq-a" / "836212060125", 5, "left", missing=(3,))
    write_dexycb_camera(src / "subject-01" / "seq-b" / "836212060125", 4, "right")
    (src / "subject-01" / "seq-b" / "836212060125" / "color_000002.jpg").unlink()
    assert detect_format(src) == "dexycb"
    result = convert_dataset(src, tmp_path / "out", size=24)
    assert (result.episodes, result.frames, result.fps) == (1, 5, 30)
    assert any("seq-b/836212060125/labels_000002.npz: no color_000002.jpg" in n for n in result.notes)
    data = Dataset(tmp_path / "out")
    low = data.low_dim(0)
    state = low["observation.state"]
    left = [hands.STATE_NAMES.index(f"left.{k}.{a}") for k in hands.KEYPOINTS for a in "xyz"]
    expected = points.reshape(5, -1).copy()
    expected[3] = 0.0
    np.testing.assert_allclose(state[:, left], expected, atol=1e-6)
    np.testing.assert_array_equal(state[:, hands.STATE_NAMES.index("left.confidence")], [1, 1, 1, 0, 1])
    assert not state[:, hands.STATE_NAMES.index("right.confidence")].any()
    np.testing.assert_allclose(low[hands.INTRINSICS_KEY][0], [15.0, 15.0, 16.0, 12.0], atol=1e-3)  # 48 -> 24 pixels
    assert data.camera_size("observation.images.main") == (24, 32)
    assert check_dataset(tmp_path / "out") == []
