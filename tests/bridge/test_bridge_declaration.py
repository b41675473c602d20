"""A robot's declaration (wam/bridge/spec.py): what a bad one says names the field at fault, and JSON round-trips it."""

from __future__ import annotations

import json

import pytest

from wam.bridge.spec import RobotDeclaration

ARM = ("shoulder.pos", "elbow.pos", "gripper.pos")


def _declare(**changes) -> RobotDeclaration:
    fields = dict(state_names=ARM, action_names=ARM, action_low=(-100.0, -100.0, 0.0), action_high=(100.0, 100.0, 100.0),
                  cameras={"front": (480, 640), "wrist": (48, 64)}, fps=30.0, robot_type="so100_follower",
                  max_delta=(5.0, 5.0, 10.0))
    return RobotDeclaration(**{**fields, **changes})


def test_a_declaration_round_trips_through_json():
    declaration = _declare()
    assert (declaration.state_dim, declaration.action_dim) == (3, 3)
    wire = json.loads(json.dumps(declaration.to_json()))
    assert wire["cameras"] == {"front": [480, 640], "wrist": [48, 64]} and wire["action_low"] == [-100.0, -100.0, 0.0]
    back = RobotDeclaration.from_json(wire)
    assert back == declaration
    assert back.cameras["front"] == (480, 640) and isinstance(back.action_high, tuple)


def test_from_json_fills_defaults_and_takes_integers():
    back = RobotDeclaration.from_json({"state_names": ["a", "b"], "action_names": ["x"], "action_low": [-1],
                                       "action_high": [1], "max_delta": None, "cameras": None})
    assert back.fps == 30.0 and back.robot_type == "robot" and back.cameras == {} and back.max_delta is None
    assert back.action_low == (-1.0,) and isinstance(back.action_low[0], float)
    assert RobotDeclaration.from_json(back.to_json()) == back


@pytest.mark.parametrize("changes, message", [
    (dict(state_names=()), "state_names must list 1 to 256 names, got 0"),
    (dict(state_names=tuple(f"s{i}" for i in range(257))), "state_names must list 1 to 256 names, got 257"),
    (dict(action_names=("a", "a", "b")), "action_names has repeated names"),
    (dict(action_low=(-1.0, -1.0)), "action_low has 2 values for 3 action names"),
    (dict(action_high=(1.0,) * 4), "action_high has 4 values for 3 action names"),
    (dict(max_delta=(1.0, 1.0)), "max_delta has 2 values for 3 action names"),
    (dict(action_low=(-1.0, float("nan"), 0.0)), "action_low must be finite"),
    (dict(action_high=(1.0, float("inf"), 1.0)), "action_high must be finite"),
    (dict(action_low=(-1.0, 2.0, 0.0), action_high=(1.0, 1.0, 1.0)), "action 'elbow.pos' has low 2.0 not below high 1.0"),
    (dict(action_low=(0.0, 0.0, 0.0), action_high=(1.0, 0.0, 1.0)), "action 'elbow.pos' has low 0.0 not below high 0.0"),
    (dict(max_delta=(1.0, 0.0, 1.0)), "max_delta must be positive"),
    (dict(max_delta=(1.0, -2.0, 1.0)), "max_delta must be positive"),
    (dict(cameras={f"c{i}": (2, 2) for i in range(9)}), "9 cameras; at most 8"),
    (dict(cameras={"front cam": (48, 64)}), "camera name 'front cam'"),
    (dict(cameras={"": (48, 64)}), "camera name ''"),
    (dict(cameras={"front": (0, 64)}), "camera 'front' size 0x64 is not a frame size"),
    (dict(cameras={"front": (8192, 8192)}), "camera 'front' size 8192x8192 is not a frame size"),
    (dict(cameras={"front": (481, 640)}), "camera 'front' size 481x640 must be even"),
    (dict(cameras={"wrist": (48, 63)}), "camera 'wrist' size 48x63 must be even"),
    (dict(fps=0.0), "fps must be in \\(0, 1000\\], got 0.0"),
    (dict(fps=-30.0), "fps must be in"),
    (dict(fps=1001.0), "fps must be in"),
    (dict(fps=float("nan")), "fps must be in"),
    (dict(robot_type="so 100"), "robot_type 'so 100'"),
    (dict(robot_type=""), "robot_type ''"),
])
def test_bad_declarations_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        _declare(**changes)
    with pytest.raises(ValueError, match=message):  # the same check runs on what arrives as JSON
        RobotDeclaration.from_json({**_declare().to_json(), **json.loads(json.dumps(changes))})


@pytest.mark.parametrize("value, message", [
    ([1, 2], "must be a JSON object, got list"),
    ("declaration", "must be a JSON object, got str"),
    (None, "must be a JSON object, got NoneType"),
])
def test_from_json_of_something_else_than_an_object(value, message):
    with pytest.raises(ValueError, match=message):
        RobotDeclaration.from_json(value)


@pytest.mark.parametrize("changes, message", [
    (dict(colour="red"), "unknown field\\(s\\) \\['colour'\\]"),
    (dict(state_names="shoulder"), "state_names must be a list of non-empty names"),
    (dict(state_names=["a", ""]), "state_names must be a list of non-empty names"),
    (dict(action_names=["a", 3, "c"]), "action_names must be a list of non-empty names"),
    (dict(action_names=["x" * 129, "b", "c"]), "action_names must be a list of non-empty names"),
    (dict(action_low=-1), "action_low must be a list of numbers"),
    (dict(action_low=[-1, "0", 0]), "action_low must be a number, got '0'"),
    (dict(action_high=[1, True, 1]), "action_high must be a number, got True"),
    (dict(max_delta=[1, None, 1]), "max_delta must be a number, got None"),
    (dict(fps="30"), "fps must be a number, got '30'"),
    (dict(fps=False), "fps must be a number, got False"),
    (dict(cameras=[480, 640]), "cameras must map a name to \\[height, width\\]"),
    (dict(cameras={"front": [480]}), "cameras.front must be \\[height, width\\]"),
    (dict(cameras={"front": [480.0, 640]}), "cameras.front must be \\[height, width\\]"),
    (dict(cameras={"front": [True, 2]}), "cameras.front must be \\[height, width\\]"),
    (dict(cameras={"front": "480x640"}), "cameras.front must be \\[height, width\\]"),
])
def test_from_json_names_the_malformed_field(changes, message):
    with pytest.raises(ValueError, match=message):
        RobotDeclaration.from_json({**_declare().to_json(), **changes})


def test_from_json_lists_every_missing_field():
    wire = _declare().to_json()
    del wire["action_low"], wire["state_names"]
    with pytest.raises(ValueError, match="missing field\\(s\\) \\['action_low', 'state_names'\\]"):
        RobotDeclaration.from_json(wire)
