"""Guards wam.envs.experts.ScriptedExpert: it solves its tasks, its noise is seeded, and its
actions stay inside the action box. State observations only: the experts never look at pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

from wam.envs import make
from wam.envs.experts import ScriptedExpert

EPISODES = 10
MAX_STEPS = 500


def _run_episode(env, expert, seed: int) -> tuple[bool, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    expert.reset(seed=seed)
    actions, success = [], False
    while True:
        action = expert.act(obs)
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        success = info["success"]
        if terminated or truncated:
            return success, np.stack(actions)


@pytest.mark.parametrize(
    "task", ["reach-v3", "button-press-topdown-v3", "drawer-close-v3", "door-open-v3", "window-close-v3"]
)
def test_expert_success_rate(task):
    env = make(f"metaworld/{task}", obs="state", max_episode_steps=MAX_STEPS)
    try:
        expert = ScriptedExpert(task)
        results = [_run_episode(env, expert, seed) for seed in range(EPISODES)]
    finally:
        env.close()
    rate = sum(success for success, _ in results) / EPISODES
    assert rate >= 0.9, f"{task}: expert success {rate:.0%} over {EPISODES} seeded episodes"
    for _, actions in results:
        assert actions.dtype == np.float32 and actions.shape[1] == 4
        assert np.all(np.abs(actions) <= 1.0)


def _actions_along(env, experts: list[ScriptedExpert], seed: int = 5, steps: int = 30) -> list[np.ndarray]:
    """Every expert's action at each observation of one trajectory (driven by the first expert)."""
    obs, _ = env.reset(seed=seed)
    out = [[] for _ in experts]
    for _ in range(steps):
        for i, expert in enumerate(experts):
            out[i].append(expert.act(obs))
        obs, *_ = env.step(out[0][-1])
    return [np.stack(a) for a in out]


def test_noise_changes_actions_and_is_seeded():
    env = make("metaworld/push-v3", obs="state")
    try:
        noisy_a = ScriptedExpert("push-v3", noise=0.1, seed=3)
        noisy_b = ScriptedExpert("push-v3", noise=0.1, seed=3)
        noisy_c = ScriptedExpert("push-v3", noise=0.1, seed=4)
        clean = ScriptedExpert("push-v3")
        a, b, c, d = _actions_along(env, [noisy_a, noisy_b, noisy_c, clean])
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c), "different noise seeds gave the same actions"
        assert not np.array_equal(a, d), "noise did not change the actions"
        # Noise is small: the noisy expert still points where the clean one does, on average.
        assert np.abs(a - d).mean() < 0.2

        # reset(seed) replays the same noise; reset() without a seed keeps the stream going.
        noisy_a.reset(seed=3)
        noisy_c.reset(seed=3)
        again, from_c = _actions_along(env, [noisy_a, noisy_c])
        np.testing.assert_array_equal(again, a)
        np.testing.assert_array_equal(from_c, a)
        noisy_a.reset()
        (continued,) = _actions_along(env, [noisy_a])
        assert not np.array_equal(continued, a)
    finally:
        env.close()


def test_noiseless_expert_is_a_function_of_the_observation():
    env = make("metaworld/push-v3", obs="state")
    try:
        a, b = _actions_along(env, [ScriptedExpert("push-v3", seed=1), ScriptedExpert("push-v3", seed=2)])
    finally:
        env.close()
    np.testing.assert_array_equal(a, b)


def test_actions_within_bounds_under_heavy_noise():
    env = make("metaworld/door-open-v3", obs="state", max_episode_steps=60)
    try:
        expert = ScriptedExpert("door-open-v3", noise=2.0, seed=0)
        _, actions = _run_episode(env, expert, seed=0)
    finally:
        env.close()
    assert actions.dtype == np.float32
    assert np.all(actions <= 1.0) and np.all(actions >= -1.0)
    assert np.any(np.abs(actions) == 1.0), "heavy noise should have hit the clip"


def test_exploration_holds_one_random_action_per_segment_and_is_seeded():
    env = make("metaworld/push-v3", obs="state", max_episode_steps=64)
    try:
        experts = [ScriptedExpert("push-v3", explore=0.5, segment=8, seed=s) for s in (5, 5)] + [ScriptedExpert("push-v3")]
        a, b, clean = _actions_along(env, experts, steps=64)
    finally:
        env.close()
    np.testing.assert_array_equal(a, b)
    segments = a[: len(a) // 8 * 8].reshape(-1, 8, 4)
    held = [np.all(seg == seg[0]) and not np.array_equal(seg, c) for seg, c in zip(segments, clean.reshape(-1, 8, 4))]
    assert 0 < sum(held) < len(held), f"with explore 0.5 some segments, not all, are held random actions: {held}"
    assert np.all(np.abs(a) <= 1.0)


@pytest.mark.parametrize(
    "kwargs, named",
    [({"task": "no-such-task-v3"}, "no-such-task-v3"), ({"task": "reach-v3", "noise": -0.1}, "-0.1"),
     ({"task": "reach-v3", "explore": 1.5}, "explore"), ({"task": "reach-v3", "segment": 0}, "segment")],
)
def test_bad_expert_arguments(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ScriptedExpert(**kwargs)
