"""The tabletop env that scanned scenes, twins and cousins run in: building, experts, stability, collection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wam.envs.registry import make
from wam.envs.tabletop.experts import TabletopExpert
from wam.envs.tabletop.scene import SceneError, load_scene


@pytest.fixture(scope="module")
def stone_scene(tmp_path_factory):
    from wam.real2sim.arrange import arranged_scene

    directory = tmp_path_factory.mktemp("tabletop") / "stone"
    arranged_scene(directory, ("stone", "box", "cylinder"), seed=1)
    return directory


def run_expert(env, task, seed, noise=0.1):
    obs, _ = env.reset(seed=seed)
    expert = TabletopExpert(task, env.target.extents, env.scene.table.top, noise=noise, seed=seed)
    for _ in range(env.config.max_episode_steps):
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        if terminated or truncated:
            break
    return info["success"]


@pytest.mark.parametrize("task", ["reach", "push", "pick-place"])
def test_the_scripted_expert_solves_each_task_from_noisy_actions(stone_scene, task):
    env = make(f"scan/{stone_scene}", task=task, obs="state")
    wins = sum(run_expert(env, task, seed) for seed in range(8))
    env.close()
    assert wins >= 7, f"{task}: {wins}/8"


def test_an_idle_episode_fails_and_says_so(stone_scene):
    env = make(f"scan/{stone_scene}", task="push", obs="state", max_episode_steps=10)
    env.reset(seed=0)
    for _ in range(10):
        _, reward, terminated, truncated, info = env.step(np.zeros(4))
    assert not info["success"] and reward == 0.0 and truncated and not terminated


def test_objects_at_rest_for_two_seconds_move_less_than_five_millimetres(stone_scene):
    env = make(f"scan/{stone_scene}", task="reach", obs="state", jitter=0.0)
    env.reset(seed=0)
    names = [o.name for o in env.scene.objects]
    before = {n: env.object_pose(n)[0] for n in names}
    for _ in range(40):  # 2 s at 20 steps a second, the gripper held away
        env.step(np.array([0.0, 0.0, 0.0, -1.0]))
    for name in names:
        assert np.linalg.norm(env.object_pose(name)[0] - before[name]) < 0.005, name


def test_images_come_from_every_camera_asked_and_the_env_passes_the_checker(stone_scene):
    from gymnasium.utils.env_checker import check_env

    env = make(f"scan/{stone_scene}", task="push", size=48, cameras=("front", "wrist"))
    obs, _ = env.reset(seed=3)
    assert set(obs["images"]) == {"front", "wrist"} and obs["image"].shape == (48, 48, 3)
    assert obs["images"]["front"].std() > 5  # a scene, not a blank frame
    check_env(env, skip_render_check=True)


def test_a_scene_directory_with_faults_is_refused_by_name(stone_scene, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(stone_scene, broken)
    payload = json.loads((broken / "scene.json").read_text())
    (broken / payload["objects"][0]["hulls"][0]).unlink()
    with pytest.raises(SceneError, match="object0.*hull0.obj"):
        load_scene(broken)
    payload = json.loads((stone_scene / "scene.json").read_text())
    payload["target"] = "teapot"
    (tmp_path / "t").mkdir()
    shutil.copytree(stone_scene / "meshes", tmp_path / "t" / "meshes")
    (tmp_path / "t" / "scene.json").write_text(json.dumps(payload))
    with pytest.raises(SceneError, match="no object 'teapot'"):
        load_scene(tmp_path / "t")
    with pytest.raises(SceneError, match="no scene.json"):
        load_scene(tmp_path)
    with pytest.raises(ValueError, match="unknown tabletop task 'fly'"):
        make(f"scan/{stone_scene}", task="fly")


@pytest.mark.slow
def test_collection_takes_a_scene_like_any_env(stone_scene, tmp_path):
    from wam.data import Dataset
    from wam.envs.collect import CollectConfig, collect

    result = collect(CollectConfig(("push",), 2, tmp_path / "ds", size=32, cameras=("front", "wrist"), max_steps=150,
                                   env=f"scan/{stone_scene}", seed=2), progress=False)
    assert result.added == 2 and result.successes == 2
    dataset = Dataset(tmp_path / "ds")
    assert dataset.info["robot_type"] == "parallel_gripper"
    assert sorted(dataset.camera_keys) == ["observation.images.front", "observation.images.wrist"]
    assert dataset.features["action"].shape == (4,) and dataset.features["observation.state"].names == (
        "tip_x", "tip_y", "tip_z", "opening")
