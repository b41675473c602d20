"""Guards the importers: a LeRobot v2.1 directory and a robomimic HDF5 file, written here in
their real layouts (pyarrow, PyAV, h5py; neither lerobot nor robomimic installed), convert
into wam datasets that read back with the same episodes, tasks, fps, cameras and values,
through the library and through `wam data convert`; bad input fails naming the file or
field, with exit code 2 and nothing left at the destination.
"""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import av
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from wam.cli import app
from wam.data import Dataset, DatasetError
from wam.data.check import check_dataset
from wam.data.importers import convert_dataset, detect_format
from wam.data.video import decode_video

runner = CliRunner()

# -- a LeRobot v2.1 dataset ------------------------------------------------------------------------
V21_FPS = 30
V21_LENGTHS = [12, 9, 15]
V21_TASKS = ["pick the cube", "open the drawer"]
V21_EPISODE_TASKS = [[V21_TASKS[0]], [V21_TASKS[1]], [V21_TASKS[0], V21_TASKS[1]]]
TOP, WRIST = "observation.images.top", "observation.images.wrist"
TOP_SIZE, WRIST_SIZE = (32, 48), (32, 32)  # (height, width): the video camera is not square
MOTORS = [f"joint_{i}" for i in range(5)] + ["gripper"]


def _gradient_frames(length: int, height: int, width: int, seed: int) -> np.ndarray:
    """(length, H, W, 3) uint8: smooth drifting gradients plus a moving square."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((length, height, width, 3), np.uint8)
    for t in range(length):
        image = np.stack([(x * 255 / width + 4 * t + 9 * seed) % 256, (y * 255 / height + 5 * seed) % 256,
                          ((x + y) * 100 / width + 3 * t) % 256], -1)
        px, py = (2 * t + seed) % (width - 8), (t + 2 * seed) % (height - 8)
        image[py : py + 8, px : px + 8] = (240, 40, 40 + 30 * seed)
        out[t] = image.astype(np.uint8)
    return out


def _encode_source_video(frames: np.ndarray, path: Path, fps: int) -> None:
    """As lerobot's v2.1 writer does it (one mp4 per episode, timestamps from 0), in H.264 4:2:0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "12", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _v21_episode(e: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(e)
    success = np.zeros(length, bool)
    success[-1] = e != 1
    return {
        "state": rng.normal(size=(length, 6)).astype(np.float32),
        "action": rng.uniform(-1, 1, size=(length, 6)).astype(np.float32),
        "reward": rng.random(length).astype(np.float32),
        "done": np.arange(length) == length - 1,
        "success": success,
        TOP: _gradient_frames(length, *TOP_SIZE, seed=e),
        WRIST: _gradient_frames(length, *WRIST_SIZE, seed=10 + e),
    }


def write_v21(root: Path) -> dict[int, dict[str, np.ndarray]]:
    """A 3-episode v2.1 dataset: a video camera, a PNG camera, 6-d state/action, 2 tasks, 30 fps."""
    video_info = {"video.fps": V21_FPS, "video.height": TOP_SIZE[0], "video.width": TOP_SIZE[1], "video.channels": 3,
                  "video.codec": "h264", "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "has_audio": False}
    features = {
        TOP: {"dtype": "video", "shape": [*TOP_SIZE, 3], "names": ["height", "width", "channels"], "info": video_info},
        WRIST: {"dtype": "image", "shape": [3, *WRIST_SIZE], "names": ["channels", "height", "width"]},
        "observation.state": {"dtype": "float32", "shape": [6], "names": {"motors": MOTORS}},
        "action": {"dtype": "float32", "shape": [6], "names": MOTORS},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
        "language_instruction": {"dtype": "string", "shape": [1], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    info = {
        "codebase_version": "v2.1", "robot_type": "so100", "total_episodes": 3, "total_frames": sum(V21_LENGTHS),
        "total_tasks": 2, "total_videos": 3, "total_chunks": 1, "chunks_size": 1000, "fps": V21_FPS,
        "splits": {"train": "0:3"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": features,
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/tasks.jsonl").write_text("".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(V21_TASKS)))
    episodes, start = {}, 0
    with open(root / "meta/episodes.jsonl", "w") as jsonl, open(root / "meta/episodes_stats.jsonl", "w") as stats:
        for e, length in enumerate(V21_LENGTHS):
            ep = episodes[e] = _v21_episode(e, length)
            jsonl.write(json.dumps({"episode_index": e, "tasks": V21_EPISODE_TASKS[e], "length": length}) + "\n")
            stats.write(json.dumps({"episode_index": e, "stats": {"action": {
                "min": ep["action"].min(0).tolist(), "max": ep["action"].max(0).tolist(), "count": [length]}}}) + "\n")
            frame_index = np.arange(length)
            image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
            table = pa.table({
                "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(ep["state"].reshape(-1)), 6),
                "action": pa.array(list(ep["action"]), type=pa.list_(pa.float32())),  # datasets' variable-length list
                WRIST: pa.array([{"bytes": _png(im), "path": f"frame_{i:06d}.png"} for i, im in enumerate(ep[WRIST])], type=image_type),
                "next.reward": pa.array(ep["reward"]),
                "next.done": pa.array(ep["done"]),
                "next.success": pa.array(ep["success"]),
                "language_instruction": pa.array([V21_EPISODE_TASKS[e][0]] * length),
                "timestamp": pa.array((frame_index / V21_FPS).astype(np.float32)),
                "frame_index": pa.array(frame_index),
                "episode_index": pa.array(np.full(length, e)),
                "index": pa.array(frame_index + start),
                "task_index": pa.array(np.full(length, V21_TASKS.index(V21_EPISODE_TASKS[e][0]))),
            })
            path = root / f"data/chunk-000/episode_{e:06d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
            _encode_source_video(ep[TOP], root / f"videos/chunk-000/{TOP}/episode_{e:06d}.mp4", V21_FPS)
            start += length
    return episodes


# -- a robomimic HDF5 file -------------------------------------------------------------------------
DEMOS = {"demo_0": 10, "demo_2": 14, "demo_10": 8}  # numeric order, not string order
ROBOT_KEYS = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2}


def _robomimic_demo(n: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + n)

    def float64(*shape):  # robomimic stores float64; these values survive float32 exactly
        return rng.normal(size=shape).astype(np.float32).astype(np.float64)

    rewards = np.zeros(length)
    rewards[-1] = 1.0
    return {
        "actions": float64(length, 7),
        "rewards": rewards,
        "dones": (np.arange(length) == length - 1).astype(np.int64),
        "states": rng.normal(size=(length, 32)),  # full float64 precision: kept exactly
        "obs/agentview_image": _gradient_frames(length, 32, 32, seed=n),
        "obs/robot0_eye_in_hand_image": _gradient_frames(length, 32, 32, seed=20 + n),
        **{f"obs/{key}": float64(length, width) for key, width in ROBOT_KEYS.items()},
        "obs/object": float64(length, 10),
    }


def write_robomimic(path: Path, drop: tuple[str, str] | None = None, truncate: tuple[str, str] | None = None) -> dict[str, dict]:
    """Three demos with an agentview and a wrist camera (32x32), mask/train and mask/valid.

    `drop` = (demo, field) leaves a field out; `truncate` = (demo, field) writes it one frame short.
    """
    env_args = {"env_name": "Lift", "env_version": "1.4.1", "type": 1, "env_kwargs": {
        "robots": ["Panda"], "control_freq": 20, "has_renderer": False, "use_camera_obs": True,
        "camera_names": ["agentview", "robot0_eye_in_hand"], "camera_heights": 32, "camera_widths": 32}}
    demos = {}
    with h5py.File(path, "w") as handle:
        data = handle.create_group("data")
        data.attrs["total"] = sum(DEMOS.values())
        data.attrs["env_args"] = json.dumps(env_args)
        for n, (name, length) in enumerate(DEMOS.items()):
            demo = data.create_group(name)
            demo.attrs["num_samples"] = length
            fields = demos[name] = _robomimic_demo(n, length)
            for key, values in fields.items():
                if drop == (name, key):
                    continue
                demo.create_dataset(key, data=values[:-1] if truncate == (name, key) else values)
        handle.create_dataset("mask/train", data=np.array([b"demo_0", b"demo_2"]))
        handle.create_dataset("mask/valid", data=np.array([b"demo_10"]))
    return demos


# -- helpers -------------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def assert_clean(root: Path) -> None:
    errors = [p for p in check_dataset(root) if p.severity == "error"]
    assert not errors, errors


def assert_nothing_left(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")], list(out.parent.iterdir())


def invoke(*args):
    return runner.invoke(app, ["data", "convert", *[str(a) for a in args]])


def squeezed(text: str) -> str:
    return "".join(text.split())


def assert_fails_naming(result, *names) -> None:
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, (AttributeError, TypeError, KeyError, IndexError)), result.exception
    for name in names:
        assert squeezed(str(name)) in squeezed(result.output), f"{name!r} not in: {result.output}"


@pytest.fixture(scope="module")
def v21(tmp_path_factory):
    root = tmp_path_factory.mktemp("v21") / "so100_pick"
    episodes = write_v21(root)
    return root, episodes


@pytest.fixture(scope="module")
def v21_converted(v21, tmp_path_factory):
    out = tmp_path_factory.mktemp("v21out") / "wam"
    result = convert_dataset(v21[0], out)
    return out, result


@pytest.fixture(scope="module")
def robomimic(tmp_path_factory):
    path = tmp_path_factory.mktemp("robomimic") / "lift_ph.hdf5"
    return path, write_robomimic(path)


@pytest.fixture(scope="module")
def robomimic_converted(robomimic, tmp_path_factory):
    out = tmp_path_factory.mktemp("rmout") / "lift"
    return out, convert_dataset(robomimic[0], out)


# -- LeRobot v2.1 --------------------------------------------------------------------------------
def test_v21_converts_every_feature(v21, v21_converted):
    root, source = v21
    out, result = v21_converted
    assert result.format == "lerobot-v2.1" and result.episodes == 3 and result.frames == sum(V21_LENGTHS)
    assert any("language_instruction" in note for note in result.notes)
    ds = Dataset(out)
    assert ds.num_episodes == 3 and [e.length for e in ds.episodes] == V21_LENGTHS
    assert ds.fps == V21_FPS and ds.info["robot_type"] == "so100"
    assert ds.tasks == V21_TASKS
    assert [e.task for e in ds.episodes] == [t[0] for t in V21_EPISODE_TASKS]
    assert json.loads(ds.episodes[2].info["source_tasks"]) == V21_EPISODE_TASKS[2]
    assert [e.info["source_episode_index"] for e in ds.episodes] == [0, 1, 2]
    assert [e.success for e in ds.episodes] == [True, False, True]
    assert sorted(ds.camera_keys) == [TOP, WRIST]
    assert ds.features[TOP].shape == (*TOP_SIZE, 3) and ds.features[WRIST].shape == (*WRIST_SIZE, 3)
    assert ds.features["observation.state"].names == tuple(MOTORS) and ds.features["action"].names == tuple(MOTORS)
    assert ds.features["next.done"].dtype == "bool" and "language_instruction" not in ds.features
    for e, ep in source.items():
        low = ds.low_dim(e)
        np.testing.assert_array_equal(low["observation.state"], ep["state"])
        np.testing.assert_array_equal(low["action"], ep["action"])
        np.testing.assert_array_equal(low["next.reward"].reshape(-1), ep["reward"])
        np.testing.assert_array_equal(low["next.done"].reshape(-1), ep["done"])
        np.testing.assert_array_equal(low["next.success"].reshape(-1), ep["success"])
        source_top = decode_video(root / f"videos/chunk-000/{TOP}/episode_{e:06d}.mp4", V21_FPS)
        assert psnr(ds.frames(e, TOP), source_top) > 30
        assert psnr(ds.frames(e, WRIST), ep[WRIST]) > 30  # the PNGs are lossless: compare with the originals
    assert_clean(out)


def test_v21_task_override_and_detection(v21, tmp_path):
    assert detect_format(v21[0]) == "lerobot-v2.1"
    result = convert_dataset(v21[0], tmp_path / "one_task", "lerobot-v2.1", task="do the thing")
    assert result.tasks == ["do the thing"] and Dataset(tmp_path / "one_task").tasks == ["do the thing"]


def test_v21_cli(v21, tmp_path):
    out = tmp_path / "cli"
    result = invoke(v21[0], "--out", out)
    assert result.exit_code == 0, result.output
    assert "3 episodes" in result.output and "lerobot-v2.1" in result.output
    assert Dataset(out).num_episodes == 3
    assert_clean(out)


def test_v21_missing_parquet_leaves_nothing(v21, tmp_path):
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(v21[0], root)
    missing = root / "data/chunk-000/episode_000002.parquet"
    missing.unlink()
    out = tmp_path / "out"
    assert_fails_naming(invoke(root, "--out", out), missing)
    assert_nothing_left(out)


def test_v21_length_mismatch_names_file(v21, tmp_path):
    import shutil

    root = tmp_path / "short"
    shutil.copytree(v21[0], root)
    path = root / "data/chunk-000/episode_000001.parquet"
    pq.write_table(pq.read_table(path).slice(0, V21_LENGTHS[1] - 2), path)
    with pytest.raises(DatasetError, match="episode_000001.parquet.*7 rows.*says 9"):
        convert_dataset(root, tmp_path / "out")
    assert_nothing_left(tmp_path / "out")


def test_robomimic_options_refused_for_lerobot(v21, tmp_path):
    assert_fails_naming(invoke(v21[0], "--out", tmp_path / "out", "--flip"), "flip", "robomimic")
    assert_nothing_left(tmp_path / "out")


# -- robomimic -----------------------------------------------------------------------------------
def test_robomimic_converts(robomimic, robomimic_converted):
    _, source = robomimic
    out, result = robomimic_converted
    assert result.format == "robomimic" and result.fps == 20 and result.tasks == ["Lift"]
    ds = Dataset(out)
    assert ds.num_episodes == 3 and [e.length for e in ds.episodes] == list(DEMOS.values())
    assert ds.fps == 20 and ds.tasks == ["Lift"] and ds.info["robot_type"] == "Panda"
    assert [e.info["source_demo"] for e in ds.episodes] == list(DEMOS)
    assert [e.info["mask_train"] for e in ds.episodes] == [True, True, False]
    assert [e.info["mask_valid"] for e in ds.episodes] == [False, False, True]
    assert all(e.success for e in ds.episodes)
    assert ds.camera_keys == ["observation.images.agentview", "observation.images.robot0_eye_in_hand"]
    assert all(ds.features[k].shape == (32, 32, 3) for k in ds.camera_keys)
    names = ds.features["observation.state"].names
    assert names[:3] == ("robot0_eef_pos_0", "robot0_eef_pos_1", "robot0_eef_pos_2") and len(names) == 9
    assert ds.features["action"].shape == (7,) and ds.features["observation.object"].shape == (10,)
    for e, (name, fields) in enumerate(source.items()):
        low = ds.low_dim(e)
        state = np.concatenate([fields[f"obs/{k}"] for k in sorted(ROBOT_KEYS)], axis=1)
        np.testing.assert_array_equal(low["observation.state"], state)
        np.testing.assert_array_equal(low["action"], fields["actions"])
        np.testing.assert_array_equal(low["observation.object"], fields["obs/object"])
        np.testing.assert_array_equal(low["sim_state"], fields["states"])  # float64, exactly
        np.testing.assert_array_equal(low["next.reward"].reshape(-1), fields["rewards"])
        np.testing.assert_array_equal(low["next.done"].reshape(-1), fields["dones"] != 0)
        np.testing.assert_array_equal(low["next.success"].reshape(-1), np.arange(DEMOS[name]) == DEMOS[name] - 1)
        assert psnr(ds.frames(e, "observation.images.agentview"), fields["obs/agentview_image"]) > 30
        assert psnr(ds.frames(e, "observation.images.robot0_eye_in_hand"), fields["obs/robot0_eye_in_hand_image"]) > 30
    assert_clean(out)


def test_robomimic_cli_options(robomimic, tmp_path):
    path, source = robomimic
    out = tmp_path / "flipped"
    result = invoke(path, "--out", out, "--state-keys", "object,robot0_eef_pos", "--flip", "--task", "lift the cube",
                    "--fps", 10, "--no-demos-succeed")
    assert result.exit_code == 0, result.output
    ds = Dataset(out)
    assert ds.fps == 10 and ds.tasks == ["lift the cube"] and "next.success" not in ds.features
    assert all(e.success is None for e in ds.episodes)
    assert "observation.object" not in ds.features and "observation.robot0_eef_quat" in ds.features
    fields = source["demo_2"]
    np.testing.assert_array_equal(ds.low_dim(1)["observation.state"],
                                  np.concatenate([fields["obs/object"], fields["obs/robot0_eef_pos"]], axis=1))
    assert psnr(ds.frames(1, "observation.images.agentview"), fields["obs/agentview_image"][:, ::-1]) > 30
    assert_clean(out)


def test_robomimic_detected_by_suffix(robomimic, tmp_path):
    assert detect_format(robomimic[0]) == "robomimic"
    weird = tmp_path / "data.bin"
    weird.write_bytes(b"x")
    assert_fails_naming(invoke(weird, "--out", tmp_path / "out"), weird)
    assert_nothing_left(tmp_path / "out")


@pytest.mark.parametrize("case", ["missing_actions", "short_obs", "unknown_state_key", "missing_file", "not_hdf5"])
def test_robomimic_bad_input(case, tmp_path):
    path, out, extra = tmp_path / "bad.hdf5", tmp_path / "out", []
    if case == "missing_actions":
        write_robomimic(path, drop=("demo_2", "actions"))
        names = [path, "demo_2", "actions"]
    elif case == "short_obs":
        write_robomimic(path, truncate=("demo_10", "obs/robot0_eef_quat"))
        names = [path, "demo_10/obs/robot0_eef_quat", "7 frames", "8"]
    elif case == "unknown_state_key":
        write_robomimic(path)
        extra, names = ["--state-keys", "robot0_eef_pos,robot0_joint_vel"], [path, "robot0_joint_vel"]
    elif case == "missing_file":
        names = [path]
    else:
        path.write_bytes(b"not an hdf5 file")
        names = [path, "HDF5"]
    assert_fails_naming(invoke(path, "--out", out, *extra), *names)
    assert_nothing_left(out)


def test_existing_destination_refused(robomimic, robomimic_converted):
    out, _ = robomimic_converted
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert_fails_naming(invoke(robomimic[0], "--out", out), out, "already exists")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_empty_destination_directory_is_used(robomimic, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert invoke(robomimic[0], "--out", out).exit_code == 0
    assert Dataset(out).num_episodes == 3


def test_help_lists_formats():
    result = runner.invoke(app, ["data", "convert", "--help"])
    assert result.exit_code == 0, result.output
    assert "robomimic" in result.output and "--state-keys" in result.output and "--flip" in result.output
