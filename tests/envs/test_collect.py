"""Guards wam.envs.collect: datasets independent of the worker count, resumable runs,
action-free and mixed datasets, per-episode metadata, data that replays in the simulator,
and several cameras (one video each; a single camera keeps the `main` layout).

Collections are shared per module (each costs seconds); tests that change one copy it first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from wam.data import Dataset, DatasetError
from wam.data.check import check_dataset
from wam.envs import make, task_text
from wam.envs.collect import IMAGE_KEY, CollectConfig, collect, dataset_features, episode_seed

pytestmark = pytest.mark.slow  # collects MetaWorld episodes with one and two workers

TASKS = ("reach-v3", "button-press-topdown-v3")


def _collect(out: Path, **kwargs):
    config = CollectConfig(**{"tasks": TASKS, "episodes": 2, "out": out, **kwargs})
    return collect(config, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Datasets of the same two tasks: serial, parallel, resumed 2 -> 3, and fresh 3 episodes."""
    root = tmp_path_factory.mktemp("collect")
    serial_result = _collect(root / "serial", workers=1)
    parallel_result = _collect(root / "parallel", workers=2)
    shutil.copytree(root / "serial", root / "resumed")
    resume_result = _collect(root / "resumed", episodes=3)
    fresh_result = _collect(root / "fresh", episodes=3, workers=2)
    return {
        "root": root,
        "results": {"serial": serial_result, "parallel": parallel_result, "resume": resume_result, "fresh": fresh_result},
        **{name: root / name for name in ("serial", "parallel", "resumed", "fresh")},
    }


@pytest.fixture(scope="module")
def action_free(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("collect") / "video"
    result = _collect(out, tasks=("reach-v3",), episodes=1, actions=False, seed=1)
    assert result.added == 1
    return out


def _key(episode) -> tuple[str, int]:
    return episode.info["env"], episode.info["episode_number"]


def _assert_same_episode(a: Dataset, i: int, b: Dataset, j: int) -> None:
    ea, eb = a.episodes[i], b.episodes[j]
    assert (ea.task, ea.length, ea.success, ea.has_actions) == (eb.task, eb.length, eb.success, eb.has_actions)
    assert ea.info == eb.info
    la, lb = a.low_dim(i), b.low_dim(j)
    assert la.keys() == lb.keys()
    for key in la:
        if key == "task_index":
            continue  # depends on the order tasks first appeared in the dataset
        np.testing.assert_array_equal(la[key], lb[key], err_msg=f"{key} of episode {i} vs {j}")
    np.testing.assert_array_equal(a.frames(i), b.frames(j), err_msg=f"frames of episode {i} vs {j}")


# -- the worker count does not change the dataset ------------------------------------------------
def test_results_count_what_was_written(runs):
    serial = runs["results"]["serial"]
    assert (serial.added, serial.skipped, serial.successes) == (4, 0, 4)
    dataset = Dataset(runs["serial"])
    assert serial.frames == dataset.num_frames > 4
    assert serial.seconds > 0 and serial.frames_per_second > 0


def test_one_and_two_workers_give_identical_datasets(runs):
    serial, parallel = Dataset(runs["serial"]), Dataset(runs["parallel"])
    assert runs["results"]["parallel"].frames == runs["results"]["serial"].frames
    assert [_key(e) for e in serial.episodes] == [_key(e) for e in parallel.episodes] == [
        (f"metaworld/{t}", n) for t in TASKS for n in range(2)
    ]
    assert serial.tasks == parallel.tasks == [task_text(t) for t in TASKS]
    for i in range(serial.num_episodes):
        _assert_same_episode(serial, i, parallel, i)
        np.testing.assert_array_equal(serial.low_dim(i)["task_index"], parallel.low_dim(i)["task_index"])


# -- resumable -----------------------------------------------------------------------------------
def test_resume_adds_only_the_missing_episodes(runs):
    result = runs["results"]["resume"]
    assert (result.added, result.skipped) == (len(TASKS), 2 * len(TASKS))
    resumed = Dataset(runs["resumed"])
    per_task = {t: [e.info["episode_number"] for e in resumed.episodes if e.info["env"] == f"metaworld/{t}"] for t in TASKS}
    assert per_task == {t: [0, 1, 2] for t in TASKS}


def test_resumed_dataset_equals_a_fresh_one(runs):
    resumed, fresh = Dataset(runs["resumed"]), Dataset(runs["fresh"])
    assert resumed.num_episodes == fresh.num_episodes == 3 * len(TASKS)
    assert resumed.num_frames == fresh.num_frames
    where = {_key(e): e.index for e in fresh.episodes}
    assert set(where) == {_key(e) for e in resumed.episodes}
    for episode in resumed.episodes:
        _assert_same_episode(resumed, episode.index, fresh, where[_key(episode)])
    assert check_dataset(runs["resumed"]) == []


def test_rerunning_a_complete_collection_adds_nothing(runs, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(runs["serial"], out)
    before = Dataset(out).num_frames
    result = _collect(out, workers=2)
    assert (result.added, result.skipped, result.frames) == (0, 4, 0)
    assert Dataset(out).num_frames == before


# -- metadata and frame contents -----------------------------------------------------------------
def test_episode_metadata(runs):
    dataset = Dataset(runs["serial"])
    for episode in dataset.episodes:
        task = episode.info["env"].removeprefix("metaworld/")
        number = episode.info["episode_number"]
        assert episode.task == task_text(task)
        assert episode.has_actions is True and isinstance(episode.success, bool)
        assert episode.info["seed"] == episode_seed(0, task, number)
        assert episode.info["collect_seed"] == 0 and episode.info["noise"] == 0.0
        low = dataset.low_dim(episode.index)
        frames = dataset.frames(episode.index)
        assert frames.shape == (episode.length, 64, 64, 3) and frames.dtype == np.uint8
        assert len(low["observation.state"]) == len(low["action"]) == len(low["success"]) == episode.length
        np.testing.assert_array_equal(low["frame_index"], np.arange(episode.length))
        assert low["reward"][0] == 0.0
        assert np.all(np.abs(low["action"]) <= 1.0)
    # Placement seeds differ between episodes and tasks.
    assert len({e.info["seed"] for e in dataset.episodes}) == dataset.num_episodes


def test_success_flag_is_set_on_the_last_frame_only(runs):
    dataset = Dataset(runs["serial"])
    assert all(e.success for e in dataset.episodes), "the experts solve these tasks"
    for episode in dataset.episodes:
        success = dataset.low_dim(episode.index)["success"]
        assert success[-1] and not success[:-1].any(), f"episode {episode.index}: {np.flatnonzero(success)}"


def test_recorded_actions_replay_to_the_recorded_states(runs):
    """Frame t holds o_t and the action taken there: replaying the actions reproduces the states."""
    dataset = Dataset(runs["serial"])
    episode = dataset.episodes[2]
    low = dataset.low_dim(episode.index)
    env = make(episode.info["env"], obs="pixels")
    try:
        obs, _ = env.reset(seed=episode.info["seed"])
        first_frame = dataset.frames(episode.index, count=1)[0]
        assert np.abs(first_frame.astype(int) - obs["image"]).mean() < 3, "video frame 0 is not the reset frame"
        states = [obs["state"]]
        for action in low["action"][:-1]:
            obs, _, terminated, truncated, info = env.step(action)
            states.append(obs["state"])
    finally:
        env.close()
    np.testing.assert_array_equal(np.stack(states), low["observation.state"])
    assert terminated and info["success"]


def test_check_finds_nothing_wrong(runs, action_free):
    for path in (runs["serial"], runs["parallel"], runs["fresh"], action_free):
        assert check_dataset(path) == [], path


def test_short_step_limit_truncates_unsuccessful_episodes(tmp_path):
    result = _collect(tmp_path / "short", tasks=("door-open-v3",), episodes=1, max_steps=10)
    assert (result.added, result.successes, result.frames) == (1, 0, 11)
    dataset = Dataset(tmp_path / "short")
    assert dataset.episodes[0].success is False and dataset.episodes[0].length == 11
    assert not dataset.low_dim(0)["success"].any()


def test_after_success_records_the_goal_state_held(tmp_path):
    result = _collect(tmp_path / "held", tasks=("button-press-topdown-v3",), episodes=1, after_success=6)
    plain = _collect(tmp_path / "plain", tasks=("button-press-topdown-v3",), episodes=1)
    assert result.successes == 1 and result.frames == plain.frames + 6
    dataset = Dataset(tmp_path / "held")
    success = dataset.low_dim(0)["success"]
    first = int(np.flatnonzero(success)[0])
    assert first == plain.frames - 1 and len(success) == first + 7, "six steps after the first success"
    assert success[first:].sum() >= 4, f"the pressed button stays pressed: {success[first:]}"
    assert dataset.episodes[0].info["after_success"] == 6 and dataset.episodes[0].success


def test_exploring_collection_is_recorded_as_play_data(tmp_path):
    _collect(tmp_path / "play", tasks=("reach-v3",), episodes=1, explore=0.5, max_steps=64)
    dataset = Dataset(tmp_path / "play")
    assert dataset.episodes[0].info["explore"] == 0.5
    action = dataset.low_dim(0)["action"]
    repeats = np.all(action[1:] == action[:-1], axis=1)
    assert repeats.sum() >= 7, "held random actions repeat exactly within a segment"


# -- action-free and mixed datasets --------------------------------------------------------------
def test_action_free_dataset_has_no_action_feature(action_free):
    info = json.loads((action_free / "meta/info.json").read_text())
    assert "action" not in info["features"]
    dataset = Dataset(action_free)
    assert not dataset.has_actions and dataset.action_dim is None
    assert [e.has_actions for e in dataset.episodes] == [False]
    assert "action" not in dataset.low_dim(0)
    window = dataset.window(0, 0, 2)
    assert "action" not in window and not window["action_mask"].any()


def test_action_free_episodes_append_to_a_labelled_dataset(runs, tmp_path):
    out = tmp_path / "mixed"
    shutil.copytree(runs["serial"], out)
    result = _collect(out, tasks=("reach-v3",), episodes=1, actions=False, seed=1)
    assert result.added == 1
    dataset = Dataset(out)
    assert dataset.has_actions
    assert [e.has_actions for e in dataset.episodes] == [True] * 4 + [False]
    assert "action" not in dataset.low_dim(4)
    window = dataset.window(4, 0, 3)
    assert not window["action_mask"].any() and np.all(window["action"] == 0)
    assert dataset.window(0, 0, 3)["action_mask"].all()
    assert check_dataset(out) == []


def test_labelled_episodes_are_refused_by_an_action_free_dataset(action_free, tmp_path):
    out = tmp_path / "video"
    shutil.copytree(action_free, out)
    with pytest.raises(DatasetError, match="action"):
        _collect(out, tasks=("reach-v3",), episodes=1, actions=True)
    assert Dataset(out).num_episodes == 1


# -- arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, named",
    [({"tasks": ("reach-v3", "fly-v3")}, "fly-v3"), ({"workers": 0}, "workers"), ({"episodes": -1}, "episodes"),
     ({"explore": -0.1}, "explore"), ({"after_success": -1}, "after_success")],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, named):
    with pytest.raises(ValueError, match=named):
        _collect(tmp_path / "bad", **kwargs)


def test_zero_episodes_adds_nothing(tmp_path):
    result = _collect(tmp_path / "empty", episodes=0)
    assert (result.added, result.skipped, result.frames) == (0, 0, 0)


def test_info_json_describes_the_collection(runs):
    info = json.loads((runs["serial"] / "meta/info.json").read_text())
    assert info["features"][IMAGE_KEY]["shape"] == [64, 64, 3]
    assert info["total_episodes"] == 4 and info["fps"] == 80


def test_one_camera_keeps_the_single_camera_layout(runs):
    """The default (and any lone camera) writes the features every dataset before several cameras had."""
    info = json.loads((runs["serial"] / "meta/info.json").read_text())
    assert list(info["features"]) == [IMAGE_KEY, "observation.state", "reward", "success", "action",
                                      "timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert [p.name for p in (runs["serial"] / "videos").iterdir()] == [IMAGE_KEY]
    assert {e.info["camera"] for e in Dataset(runs["serial"]).episodes} == {"corner2"}
    assert list(dataset_features(64, True, ("gripperPOV",))) == list(dataset_features(64, True))


# -- several cameras -----------------------------------------------------------------------------
CAMERAS = ("corner2", "gripperPOV")
CAMERA_KEYS = [f"observation.images.{c}" for c in CAMERAS]


@pytest.fixture(scope="module")
def two_cameras(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("collect") / "two"
    result = _collect(out, tasks=("pick-place-v3",), episodes=1, size=32, cameras=CAMERAS, max_steps=12)
    assert result.added == 1
    return out


def test_two_cameras_give_two_video_features_of_different_views(two_cameras):
    dataset = Dataset(two_cameras)
    assert dataset.camera_keys == CAMERA_KEYS
    info = json.loads((two_cameras / "meta/info.json").read_text())
    for key in CAMERA_KEYS:
        assert info["features"][key]["shape"] == [32, 32, 3]
        assert info["features"][key]["names"] == ["height", "width", "channels"]
    episode = dataset.episodes[0]
    assert episode.info["camera"] == "corner2,gripperPOV"
    views = [dataset.frames(0, key) for key in CAMERA_KEYS]
    for frames in views:
        assert frames.shape == (episode.length, 32, 32, 3) and frames.dtype == np.uint8
    assert np.abs(views[0].astype(int) - views[1]).mean() > 20, "the two cameras recorded the same view"
    assert check_dataset(two_cameras) == []


def test_two_camera_frames_are_the_envs_views(two_cameras):
    """Video frame 0 of each camera is that camera's reset frame (up to H.264 loss)."""
    dataset = Dataset(two_cameras)
    env = make("metaworld/pick-place-v3", size=32, cameras=CAMERAS)
    try:
        obs, _ = env.reset(seed=dataset.episodes[0].info["seed"])
    finally:
        env.close()
    for camera, key in zip(CAMERAS, CAMERA_KEYS):
        assert np.abs(dataset.frames(0, key, count=1)[0].astype(int) - obs["images"][camera]).mean() < 6, camera


def test_two_camera_collection_resumes_and_refuses_other_cameras(two_cameras, tmp_path):
    out = tmp_path / "two"
    shutil.copytree(two_cameras, out)
    again = _collect(out, tasks=("pick-place-v3",), episodes=1, size=32, cameras=CAMERAS, max_steps=12)
    assert (again.added, again.skipped) == (0, 1)
    with pytest.raises(DatasetError, match="observation.images"):
        _collect(out, tasks=("pick-place-v3",), episodes=1, size=32, max_steps=12)


def test_an_unknown_camera_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match="'wrist'") as err:
        _collect(tmp_path / "bad", cameras=("corner2", "wrist"), workers=2)
    message = str(err.value)
    assert "cameras: topview, corner, corner2, corner3, corner4, behindGripper, gripperPOV" in message and "\n" not in message
    assert not (tmp_path / "bad").exists(), "the dataset was opened before the camera was checked"


def test_a_dream_is_collected_with_one_camera(tmp_path):
    with pytest.raises(ValueError, match="one camera"):
        _collect(tmp_path / "dream", cameras=CAMERAS, env="dream/nowhere", policy=lambda task, noise: None)


@pytest.mark.parametrize("size", [96, 128])
def test_larger_frames_are_collected(tmp_path, size):
    result = _collect(tmp_path / f"s{size}", tasks=("reach-v3",), episodes=1, size=size, max_steps=3)
    assert result.frames == 4
    assert Dataset(tmp_path / f"s{size}").frames(0).shape == (4, size, size, 3)
