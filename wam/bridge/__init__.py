"""Real robots behind the Physical API: a bridge process next to the hardware connects out to `wam serve`.

Imports only numpy and websockets (and, for `SimulatedRobot`, wam's simulators), so a robot's
computer needs nothing of the training stack. See docs/real_robots.md.
"""

from wam.bridge.bridge import Bridge, BridgeConfig, BridgeRefused
from wam.bridge.lerobot import LeRobotRobot
from wam.bridge.robot import BridgeRobot, RobotObservation, SimulatedRobot
from wam.bridge.spec import RobotDeclaration

__all__ = ["Bridge", "BridgeConfig", "BridgeRefused", "BridgeRobot", "LeRobotRobot", "RobotDeclaration", "RobotObservation",
           "SimulatedRobot"]
