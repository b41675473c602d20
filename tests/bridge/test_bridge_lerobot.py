"""LeRobot arms behind the bridge (wam/bridge/lerobot.py), with a fake arm that has LeRobot's `Robot` interface."""

from __future__ import annotations

import numpy as np
import pytest

from wam.bridge.lerobot import LeRobotRobot

JOINTS = ("shoulder_pan.pos", "elbow_flex.pos", "gripper.pos")


class FakeArm:
    """The calls of lerobot's `Robot` that a bridge makes: features as LeRobot describes an SO-100, positions it follows."""

    name = "so100_follower"

    def __init__(self, connected: bool = False, cameras=None, actions=JOINTS):
        self.is_connected, self.connects, self.disconnects = connected, 0, 0
        self.cameras = {"front": (48, 64, 3), "wrist": (32, 32, 3)} if cameras is None else cameras
        self.actions, self.sent = tuple(actions), []
        self.pose = {name: 10.0 * (i + 1) for i, name in enumerate(JOINTS)}
        self.drop: str | None = None  # a feature the observation leaves out, as a broken camera would

    @property
    def observation_features(self) -> dict:
        return {**{name: float for name in JOINTS}, **self.cameras}

    @property
    def action_features(self) -> dict:
        return {name: float for name in self.actions}

    def connect(self, calibrate: bool = True) -> None:
        self.is_connected, self.connects = True, self.connects + 1

    def disconnect(self) -> None:
        self.is_connected, self.disconnects = False, self.disconnects + 1

    def get_observation(self) -> dict:
        images = {name: np.full(shape, 7 + i, np.uint8) for i, (name, shape) in enumerate(self.cameras.items())}
        observation = {**self.pose, **images}
        observation.pop(self.drop, None)
        return observation

    def send_action(self, action: dict) -> dict:
        self.sent.append(dict(action))
        self.pose.update({name: value for name, value in action.items() if name in self.pose})
        return action


def _robot(arm=None, **options) -> LeRobotRobot:
    return LeRobotRobot(arm or FakeArm(), (-100.0, -100.0, 0.0), (100.0, 100.0, 100.0), **options)


def test_features_become_the_declaration():
    robot = _robot(fps=15.0, max_delta=(5, 5, 10))
    declaration = robot.declare()
    assert declaration.state_names == JOINTS and declaration.action_names == JOINTS
    assert declaration.cameras == {"front": (48, 64), "wrist": (32, 32)}
    assert declaration.action_low == (-100.0, -100.0, 0.0) and declaration.action_high == (100.0, 100.0, 100.0)
    assert declaration.fps == 15.0 and declaration.robot_type == "so100_follower" and declaration.max_delta == (5.0, 5.0, 10.0)


def test_connects_only_an_arm_that_is_not_connected_and_disconnects_on_close():
    arm = FakeArm()
    robot = _robot(arm)
    assert arm.connects == 1
    robot.close()
    assert arm.disconnects == 1
    robot.close()  # already let go: not again
    assert arm.disconnects == 1
    ready = FakeArm(connected=True)
    _robot(ready)
    assert ready.connects == 0


def test_an_observation_is_the_state_in_declared_order_and_the_camera_frames():
    obs = _robot().reset(seed=3, task="pick")
    assert obs.state.dtype == np.float32 and obs.state.tolist() == [10.0, 20.0, 30.0]
    assert set(obs.images) == {"front", "wrist"}
    assert obs.images["front"].shape == (48, 64, 3) and obs.images["front"].dtype == np.uint8
    assert obs.images["wrist"].shape == (32, 32, 3) and int(obs.images["wrist"][0, 0, 0]) == 8
    assert (obs.reward, obs.success, obs.terminated) == (0.0, False, False)


def test_an_action_is_sent_as_a_dict_of_named_floats():
    arm = FakeArm()
    robot = _robot(arm)
    obs = robot.act(np.array([1.5, -2.0, 50.0], np.float32))
    assert arm.sent == [{"shoulder_pan.pos": 1.5, "elbow_flex.pos": -2.0, "gripper.pos": 50.0}]
    assert all(type(value) is float for value in arm.sent[0].values())
    assert obs.state.tolist() == [1.5, -2.0, 50.0] and robot.last["gripper.pos"] == 50.0


def test_hold_sends_the_present_pose_or_the_safe_action():
    arm = FakeArm()
    robot = _robot(arm)
    arm.pose["elbow_flex.pos"] = -33.0  # moved by hand since the last observation
    robot.hold()
    assert arm.sent == [{"shoulder_pan.pos": 10.0, "elbow_flex.pos": -33.0, "gripper.pos": 30.0}]
    safe_arm = FakeArm()
    _robot(safe_arm, safe_action=(0, 0, 5)).hold()
    assert safe_arm.sent == [{"shoulder_pan.pos": 0.0, "elbow_flex.pos": 0.0, "gripper.pos": 5.0}]


def test_actions_it_cannot_observe_need_a_safe_action():
    velocity_arm = FakeArm(actions=("shoulder_pan.vel", "elbow_flex.vel"))
    with pytest.raises(ValueError, match="actions \\['shoulder_pan.vel', 'elbow_flex.vel'\\] are not observed"):
        LeRobotRobot(velocity_arm, (-1, -1), (1, 1))
    robot = LeRobotRobot(FakeArm(actions=("shoulder_pan.vel", "elbow_flex.vel")), (-1, -1), (1, 1), safe_action=(0, 0))
    robot.hold()
    assert robot.robot.sent == [{"shoulder_pan.vel": 0.0, "elbow_flex.vel": 0.0}]
    assert robot.declare().state_names == JOINTS and robot.declare().action_names == ("shoulder_pan.vel", "elbow_flex.vel")


def test_a_safe_action_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="safe_action has 2 values; the robot's actions have 3"):
        _robot(safe_action=(0, 0))


def test_bounds_or_cameras_that_do_not_fit_are_refused_by_the_declaration():
    with pytest.raises(ValueError, match="action_low has 2 values for 3 action names"):
        LeRobotRobot(FakeArm(), (-1, -1), (1, 1, 1))
    with pytest.raises(ValueError, match="camera 'front' size 481x640 must be even"):
        _robot(FakeArm(cameras={"front": (481, 640, 3)}))


def test_an_observation_that_lacks_a_declared_feature_is_an_error():
    arm = FakeArm()
    robot = _robot(arm)
    arm.drop = "wrist"
    with pytest.raises(ValueError, match="lacks \\['wrist'\\]"):
        robot.reset(None, None)
    arm.drop = "elbow_flex.pos"
    with pytest.raises(ValueError, match="lacks \\['elbow_flex.pos'\\]"):
        robot.act(np.zeros(3))


def test_an_arm_is_connected_only_once_its_declaration_is_accepted():
    arm = FakeArm()
    with pytest.raises(ValueError, match="not below high"):
        LeRobotRobot(arm, (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match="safe_action has 1 values"):
        LeRobotRobot(arm, (-1, -1, -1), (1, 1, 1), safe_action=(0,))
    assert arm.connects == 0 and not arm.is_connected
