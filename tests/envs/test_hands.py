"""The hand scenes: both embodiments as Gymnasium envs, their scripted experts, human video through EgoDex's layout,
retargeting onto the Shadow hand and the replay of what it writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wam.data.check import check_dataset
from wam.data.layout import ACTION_KEY, STATE_KEY
from wam.data.reader import Dataset
from wam.ego import hands
from wam.ego.egodex import CAMERA_KEY
from wam.envs import make
from wam.envs.collect import CollectConfig, collect
from wam.envs.hands.experts import HandExpert
from wam.envs.hands.retarget import ShadowRetargeter
from wam.envs.hands.tasks import HAND_TASKS
from wam.errors import DatasetError

TIPS = [hands.KEYPOINTS.index(k) for k in hands.KEYPOINTS if k.endswith("_tip")]


def run_expert(task: str, embodiment: str, seed: int, steps: int = 100) -> tuple[bool, list[np.ndarray], object]:
    env = make(f"hand/{task}", embodiment=embodiment, obs="state")
    expert = HandExpert(task, env.hand.synergy, embodiment, seed=seed)
    obs, _ = env.reset(seed=seed)
    keypoints, success = [env.keypoints()], False
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        keypoints.append(env.keypoints())
        success = info["success"]
        if terminated or truncated:
            break
    return success, keypoints, env


@pytest.mark.parametrize("embodiment", ["robot", "human"])
def test_both_hands_pass_the_env_checker_with_their_own_sizes(embodiment):
    env = make("hand/push", embodiment=embodiment, size=32, cameras=("ego", "wrist"))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    joints = 24 if embodiment == "robot" else 20
    assert env.action_space.shape == (6 + (20 if embodiment == "robot" else 16),)
    assert obs["state"].shape == (9 + joints,) and len(env.state_names) == 9 + joints
    assert obs["images"]["ego"].shape == (32, 32, 3) and obs["images"]["wrist"].shape == (32, 32, 3)
    assert obs["image"] is obs["images"]["ego"] and info["task"] == env.task_text
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(env.action_space.shape, np.nan))


def test_bad_env_options_are_named():
    with pytest.raises(ValueError, match="juggle"):
        make("hand/juggle")
    with pytest.raises(ValueError, match="embodiment"):
        make("hand/touch", embodiment="alien")
    with pytest.raises(ValueError, match="cameras"):
        make("hand/touch", cameras=("corner2",))


def test_same_seed_same_scene_for_both_hands_and_new_seed_new_scene():
    robot = make("hand/lift", embodiment="robot", obs="state")
    human = make("hand/lift", embodiment="human", obs="state")
    robot_obs, _ = robot.reset(seed=11)
    human_obs, _ = human.reset(seed=11)
    can = slice(9 + 63, 9 + 66)
    np.testing.assert_allclose(robot_obs["sim_state"][can], human_obs["sim_state"][can], atol=1e-4)
    other, _ = robot.reset(seed=12)
    assert np.linalg.norm(other["sim_state"][can] - robot_obs["sim_state"][can]) > 1e-3


@pytest.mark.parametrize("task", HAND_TASKS)
def test_the_robot_expert_solves_each_task(task):
    # benchmarks/hand_experts.py measures the rate on 50 episodes; here three seeds catch a broken expert.
    results = [run_expert(task, "robot", seed)[0] for seed in range(3)]
    assert sum(results) >= 2, f"{task}: robot expert solved {sum(results)}/3"


def test_the_human_moves_like_a_person_not_like_the_robot():
    _, robot, _ = run_expert("touch", "robot", 0)
    _, human, _ = run_expert("touch", "human", 0)
    speed = lambda points: np.linalg.norm(np.diff(np.stack(points)[:, 0], axis=0), axis=1)  # noqa: E731
    # The person accelerates smoothly (bell-shaped speed); the robot starts at full speed.
    assert speed(human)[0] < 0.5 * speed(robot)[0]
    # Different hands: the human's index finger is shorter than Shadow's.
    human_finger = np.linalg.norm(human[0][8] - human[0][5])
    robot_finger = np.linalg.norm(robot[0][8] - robot[0][5])
    assert human_finger < robot_finger - 0.005


@pytest.fixture(scope="module")
def human_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("hands")
    config = CollectConfig(("touch",), 2, root / "human", actions=False, size=32, max_steps=40, env="hand",
                           embodiment="human", egodex=root / "egodex")
    result = collect(config, progress=False)
    return root, result


def test_human_video_is_written_in_egodex_layout_and_read_back_as_the_hand_track(human_video):
    root, result = human_video
    assert result.added == 2 and result.successes >= 1
    check_dataset(root / "human")
    h5 = root / "egodex" / "part0" / "touch" / "0.hdf5"
    with h5py.File(h5) as handle:
        assert handle["transforms/rightIndexFingerTip"].shape[1:] == (4, 4)
        assert "transforms/rightIndexFingerMetacarpal" in handle and "confidences/leftHand" in handle
        assert handle.attrs["llm_description"] == "touch the red mark with the index finger"
    data = Dataset(root / "human")
    assert CAMERA_KEY in data.camera_keys and data.fps == 25
    episode = data.episodes[0]
    state = np.asarray(data.low_dim(0)[STATE_KEY], np.float64)
    # The same episode replayed in the simulator: the dataset's keypoints are its keypoints.
    _, truth, env = run_expert("touch", "human", int(episode.info["seed"]), steps=len(state) - 1)
    camera = np.asarray(data.low_dim(0)[hands.CAMERA_POSE_KEY], np.float64)
    track = hands.decode_state(state, hands.vector_to_pose(camera), None, 25.0, episode.task)
    assert set(track.hands) == {"right"}, "the untracked left hand must not come back"
    # The track's world is ARKit's (y up); compare shapes of the hand, which no world frame changes.
    got = track.hands["right"].keypoints
    expected = np.stack(truth)[: len(got)]
    np.testing.assert_allclose(np.linalg.norm(got[:, TIPS] - got[:, :1], axis=2),
                               np.linalg.norm(expected[:, TIPS] - expected[:, :1], axis=2), atol=2e-4)
    in_camera = state[:, hands.STATE_NAMES.index("right.wrist.z")]
    assert (in_camera > 0.2).all(), "the hand must be in front of the head camera"


def test_retargeting_labels_human_video_with_robot_actions_that_replay(human_video, tmp_path):
    from wam.envs.hands.replay import replay_episode
    from wam.envs.hands.retarget_dataset import retarget_dataset

    root, _ = human_video
    result = retarget_dataset(root / "human", tmp_path / "robot")
    assert result.episodes == 2 and result.untracked_frames == 0
    assert np.mean(result.tip_error_mm) < 15.0, result.tip_error_mm
    check_dataset(tmp_path / "robot")
    labelled = Dataset(tmp_path / "robot")
    assert labelled.features[ACTION_KEY].shape == (26,) and labelled.features[STATE_KEY].shape == (33,)
    assert labelled.camera_keys == [CAMERA_KEY]
    successes = [replay_episode(labelled, i).success for i in range(labelled.num_episodes)
                 if Dataset(root / "human").episodes[i].success]
    assert successes and all(successes), "retargeted touch demonstrations must still touch the mark on the robot"
    again = retarget_dataset(root / "human", tmp_path / "robot")
    assert again.episodes == 0 and Dataset(tmp_path / "robot").num_episodes == 2, "a rerun must not duplicate"


def test_retargeting_recovers_the_robots_own_keypoints():
    # Shadow onto itself: the keypoints are reachable, so the error must be near zero.
    _, robot, _ = run_expert("lift", "robot", 1, steps=30)
    solver = ShadowRetargeter()
    errors = [np.linalg.norm(solver.solve(frame)[TIPS] - frame[TIPS], axis=1).max() for frame in robot[::3]]
    assert max(errors[1:]) < 0.004, errors


def test_retargeting_refuses_what_is_not_human_video(tmp_path):
    from wam.envs.hands.retarget_dataset import retarget_dataset

    result = collect(CollectConfig(("touch",), 1, tmp_path / "robot", size=32, max_steps=10, env="hand"), progress=False)
    assert result.added == 1
    check_dataset(tmp_path / "robot")
    robot = Dataset(tmp_path / "robot")
    assert robot.features[ACTION_KEY].shape == (26,) and robot.info["robot_type"] == "shadow_hand"
    with pytest.raises(DatasetError, match="canonical hand track"):
        retarget_dataset(tmp_path / "robot", tmp_path / "out")


def test_retargeted_actions_carry_what_the_step_limit_clipped():
    from wam.envs.hands.env import MOVE_M
    from wam.envs.hands.retarget import palm_actions

    # The palm jumps 10 cm in one frame, then stays: the actions saturate, then catch up, and add up to the jump.
    states = np.zeros((12, 33))
    states[:, 3], states[:, 7] = 1.0, 1.0  # identity rotation (first two columns)
    states[1:, 0] = 0.10
    actions = palm_actions(states, np.zeros((12, 20)))
    assert np.abs(actions).max() <= 1.0 and actions[0, 0] == 1.0
    np.testing.assert_allclose(actions[:, 0].sum() * MOVE_M, 0.10, atol=1e-9)


def test_play_data_wanders_off_the_plan_and_stays_reproducible():
    env = make("hand/touch", embodiment="human", obs="state")

    def actions(explore: float, seed: int) -> np.ndarray:
        expert = HandExpert("touch", env.hand.synergy, "human", seed=seed, explore=explore)
        obs, _ = env.reset(seed=seed)
        taken = []
        for _ in range(24):
            taken.append(expert.act(obs))
            obs, *_ = env.step(taken[-1])
        return np.stack(taken)

    plain, play = actions(0.0, 5), actions(1.0, 5)
    assert np.abs(plain - play).max() > 0.2, "exploring segments must move the hand off the expert's plan"
    np.testing.assert_array_equal(play, actions(1.0, 5))
    with pytest.raises(ValueError, match="explore"):
        HandExpert("touch", env.hand.synergy, "human", explore=1.5)


def test_a_hand_task_name_means_its_instruction_everywhere_a_task_is_named():
    from wam.envs.tasks import instruction

    assert instruction("touch") == instruction("hand/touch") == "touch the red mark with the index finger"
    assert instruction("reach-v3") != "reach-v3" and instruction("fold the towel") == "fold the towel"
