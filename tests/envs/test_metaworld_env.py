"""Guards wam.envs.make and MetaWorldEnv: observations, several cameras, seeding, determinism,
the Gymnasium contract, input validation, truncation, and task-name resolution (wam.envs.tasks).
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wam.envs import MT10, MT50, TASK_TEXT, make, resolve_tasks, task_text

SIZE = 64


@pytest.fixture
def make_env():
    """`make` that closes every env it built at teardown (an unclosed renderer errors at exit)."""
    built = []

    def factory(task: str = "reach-v3", **kwargs):
        env = make(f"metaworld/{task}", **kwargs)
        built.append(env)
        return env

    yield factory
    for env in built:
        env.close()


@pytest.fixture(scope="module")
def pixel_env():
    env = make("metaworld/reach-v3", obs="pixels", size=SIZE)
    yield env
    env.close()


@pytest.fixture(scope="module")
def state_env():
    env = make("metaworld/reach-v3", obs="state")
    yield env
    env.close()


def _rollout(env, seed: int, actions: np.ndarray) -> list[dict]:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for action in actions:
        obs, *_ = env.step(action)
        out.append(obs)
    return out


# -- observations ------------------------------------------------------------------------------
def test_pixel_observation_shapes_and_dtypes(pixel_env):
    env = pixel_env
    obs, info = env.reset(seed=0)
    assert set(obs) == {"state", "sim_state", "image", "images"}
    assert list(obs["images"]) == ["corner2"] and obs["images"]["corner2"] is obs["image"]
    assert obs["state"].shape == (4,) and obs["state"].dtype == np.float32
    assert obs["sim_state"].shape == (39,) and obs["sim_state"].dtype == np.float32
    assert obs["image"].shape == (SIZE, SIZE, 3) and obs["image"].dtype == np.uint8
    assert obs["image"].flags["C_CONTIGUOUS"]
    # `state` is the proprioceptive head of the privileged vector.
    np.testing.assert_array_equal(obs["state"], obs["sim_state"][:4])
    assert info["success"] is False
    assert env.task_text == task_text("reach-v3") == info["task"]
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert obs["image"].shape == (SIZE, SIZE, 3) and obs["image"].dtype == np.uint8
    assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
    assert isinstance(info["success"], bool)


def test_state_observation_has_no_image(state_env):
    env = state_env
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"state", "sim_state"}
    assert "image" not in env.observation_space.spaces
    assert obs["state"].shape == (4,) and obs["sim_state"].shape == (39,)
    obs, *_ = env.step(env.action_space.sample())
    assert set(obs) == {"state", "sim_state"}


def test_image_is_not_blank_and_shows_the_placement(make_env):
    env = make_env("drawer-close-v3", size=SIZE)
    a = env.reset(seed=1)[0]["image"]
    b = env.reset(seed=2)[0]["image"]
    for image in (a, b):
        assert image.std() > 10, "frame is (nearly) uniform"
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    assert not np.array_equal(a, b), "different placements rendered identical frames"


# -- cameras -----------------------------------------------------------------------------------
def test_several_cameras_each_render_a_frame_and_image_is_the_first(make_env):
    env = make_env("pick-place-v3", size=32, cameras=("gripperPOV", "corner2"))
    obs, _ = env.reset(seed=0)
    assert list(obs["images"]) == ["gripperPOV", "corner2"]
    for frame in obs["images"].values():
        assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8 and frame.flags["C_CONTIGUOUS"]
        assert frame.std() > 10
    assert obs["image"] is obs["images"]["gripperPOV"]
    assert not np.array_equal(obs["images"]["gripperPOV"], obs["images"]["corner2"])
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(env.render(), obs["image"])
    # Each camera's frame is the one a single-camera env of that camera renders.
    alone = make_env("pick-place-v3", size=32, camera="corner2").reset(seed=0)[0]["image"]
    np.testing.assert_array_equal(obs["images"]["corner2"], alone)


def test_every_camera_is_turned_right_side_up():
    """A frame needs rotating exactly when the camera's image-up axis points down in the world."""
    from wam.envs.metaworld_env import camera_names, task_cameras
    from wam.envs.rendering import needs_rotation

    env = make("metaworld/drawer-open-v3", obs="state")
    try:
        env.reset(seed=0)
        model, data = env.unwrapped._sim.model, env.unwrapped._sim.data
        names = camera_names(model)
        assert set(names) == {"topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV"}
        assert names == task_cameras("drawer-open-v3")
        for i, name in enumerate(names):
            up_z = data.cam_xmat[i].reshape(3, 3)[2, 1]  # world z of the camera's y (image up) axis
            assert needs_rotation(name) == (up_z < -0.1), f"{name}: image up has world z {up_z:.2f}"
    finally:
        env.close()


# -- seeding and determinism -------------------------------------------------------------------
def test_same_seed_same_actions_is_bit_exact(make_env):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(15, 4)).astype(np.float32)
    first = _rollout(make_env("push-v3", size=SIZE), 7, actions)
    second = _rollout(make_env("push-v3", size=SIZE), 7, actions)
    for t, (a, b) in enumerate(zip(first, second)):
        for key in ("state", "sim_state", "image"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{key} differs at step {t}")
    # The arm actually moved, so the comparison covered dynamics, not just the reset.
    assert not np.allclose(first[0]["state"], first[-1]["state"])


def test_different_seeds_give_different_placements(make_env):
    env = make_env("push-v3", obs="state")
    states = [env.reset(seed=s)[0]["sim_state"] for s in (0, 1, 2)]
    assert not np.array_equal(states[0], states[1])
    assert not np.array_equal(states[1], states[2])
    np.testing.assert_array_equal(env.reset(seed=1)[0]["sim_state"], states[1])


def test_observation_mode_does_not_change_the_placement(pixel_env, state_env):
    np.testing.assert_array_equal(pixel_env.reset(seed=4)[0]["sim_state"], state_env.reset(seed=4)[0]["sim_state"])


def test_unseeded_resets_follow_the_first_seed(make_env):
    a, b = make_env("push-v3", obs="state"), make_env("push-v3", obs="state")
    a.reset(seed=3)
    b.reset(seed=3)
    np.testing.assert_array_equal(a.reset()[0]["sim_state"], b.reset()[0]["sim_state"])


# -- Gymnasium contract ------------------------------------------------------------------------
@pytest.mark.parametrize("obs", ["state", "pixels"])
def test_gymnasium_env_checker_passes(make_env, obs):
    env = make_env(obs=obs, size=32)
    assert isinstance(env.unwrapped, gym.Env)
    if obs == "pixels":
        assert env.reset(seed=0)[0]["image"].shape == (32, 32, 3)
    with warnings.catch_warnings():
        # Unbounded state boxes are intentional (positions are not bounded a priori).
        warnings.filterwarnings("ignore", message=".*Box observation space m..imum value is .*infinity")
        check_env(env.unwrapped, skip_render_check=True)


def test_render_returns_the_current_frame(pixel_env):
    obs, _ = pixel_env.reset(seed=0)
    np.testing.assert_array_equal(pixel_env.render(), obs["image"])


# -- input validation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action", [[np.nan, 0, 0, 0], [0, np.inf, 0, 0], [0, 0, 0], [0, 0, 0, 0, 0], [[0, 0, 0, 0]]], ids=str
)
def test_bad_actions_raise_value_error(state_env, action):
    state_env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        state_env.step(np.asarray(action, dtype=np.float32))


def test_out_of_range_action_is_clipped_not_rejected(state_env):
    state_env.reset(seed=0)
    big, *_ = state_env.step(np.array([5, -5, 5, 5], np.float32))
    state_env.reset(seed=0)
    unit, *_ = state_env.step(np.array([1, -1, 1, 1], np.float32))
    np.testing.assert_array_equal(big["sim_state"], unit["sim_state"])


@pytest.mark.parametrize(
    "env_id, kwargs, named",
    [
        ("metaworld/no-such-task-v3", {}, "no-such-task-v3"),
        ("metaworld/reach-v3", {"camera": "no-such-camera"}, "no-such-camera"),
        # A bad name among several is named, with the cameras there are.
        ("metaworld/reach-v3", {"cameras": ("corner2", "wrist")}, "wrist"),
        ("metaworld/reach-v3", {"cameras": ("corner2", "wrist")}, "gripperPOV"),
        ("metaworld/reach-v3", {"cameras": ()}, "cameras"),
        ("metaworld/reach-v3", {"cameras": "corner2"}, "tuple"),
        ("metaworld/reach-v3", {"cameras": ("corner2", "corner2")}, "repeat"),
        ("metaworld/reach-v3", {"camera": "corner2", "cameras": ("corner2",)}, "not both"),
        ("reach-v3", {}, "reach-v3"),
        ("metaworld/", {}, "metaworld/"),
        ("mujoco/reach-v3", {}, "mujoco"),
        ("metaworld/reach-v3", {"obs": "depth"}, "depth"),
        ("metaworld/reach-v3", {"size": 4}, "4"),
        ("metaworld/reach-v3", {"max_episode_steps": 501}, "501"),
        # An id naming several tasks is a bad id too, and must say so (not fail on an unpacking).
        ("metaworld/reach-v3,push-v3", {}, "reach-v3,push-v3"),
        ("metaworld/mt10", {}, "mt10"),
    ],
)
def test_bad_env_arguments_raise_value_error_naming_the_value(env_id, kwargs, named):
    with pytest.raises(ValueError) as err:
        make(env_id, **kwargs).close()
    assert named in str(err.value), f"message does not name {named!r}: {err.value}"


def test_make_accepts_a_missing_version_suffix(make_env):
    env = make_env("reach", obs="state")
    assert env.task_name == "reach-v3"


# -- episode end -------------------------------------------------------------------------------
def test_truncation_at_max_episode_steps(make_env):
    env = make_env(obs="state", max_episode_steps=5)
    env.reset(seed=0)
    flags = [env.step(np.zeros(4, np.float32))[2:4] for _ in range(5)]
    assert flags[:4] == [(False, False)] * 4
    assert flags[4] == (False, True)
    # A new reset starts the step count again.
    env.reset(seed=0)
    assert env.step(np.zeros(4, np.float32))[3] is False


def test_success_without_termination(make_env):
    from wam.envs.experts import ScriptedExpert

    env = make_env(obs="state", terminate_on_success=False, max_episode_steps=200)
    expert = ScriptedExpert("reach-v3")
    obs, _ = env.reset(seed=0)
    flags = []
    for _ in range(200):
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        flags.append((info["success"], terminated, truncated))
        if truncated:
            break
    assert any(success for success, _, _ in flags), "the expert never succeeded"
    assert not any(terminated for _, terminated, _ in flags)
    assert flags[-1][2] and len(flags) == 200


# -- task names --------------------------------------------------------------------------------
def test_resolve_task_sets():
    assert resolve_tasks("mt10") == list(MT10) and len(MT10) == 10
    assert resolve_tasks("MT50") == list(MT50) and len(MT50) == 50
    assert len(set(MT50)) == 50 and set(MT10) <= set(MT50)


def test_resolve_comma_lists_and_missing_suffix():
    assert resolve_tasks("reach-v3,push") == ["reach-v3", "push-v3"]
    assert resolve_tasks(" reach , metaworld/drawer-open-v3 ,") == ["reach-v3", "drawer-open-v3"]
    assert resolve_tasks("reach,reach-v3") == ["reach-v3"]  # duplicates collapse, order kept


@pytest.mark.parametrize("spec, named", [("reach-v3,jump-v3", "jump-v3"), ("mt11", "mt11"), ("reach-v2", "reach-v2")])
def test_resolve_unknown_names_raise(spec, named):
    with pytest.raises(ValueError, match=named):
        resolve_tasks(spec)


@pytest.mark.parametrize("spec", ["", " , ,"])
def test_resolve_empty_spec_raises(spec):
    with pytest.raises(ValueError, match="no tasks"):
        resolve_tasks(spec)


def test_every_mt50_task_has_text_an_env_and_an_expert():
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS
    from metaworld.policies import ENV_POLICY_MAP

    assert set(MT50) == set(ALL_V3_ENVIRONMENTS)
    assert set(MT50) <= set(ENV_POLICY_MAP)
    for name in MT50:
        text = TASK_TEXT[name]
        assert isinstance(text, str) and text.strip() == text and len(text.split()) >= 2, name
        assert task_text(name) == text
    assert len(set(TASK_TEXT.values())) == len(TASK_TEXT), "two tasks share one instruction"
    with pytest.raises(ValueError, match="nope"):
        task_text("nope")
