"""A robot behind a bridge, as the env its worker steps: every reset and action is a round trip to the bridge.

The worker that runs a remote robot is the same as a simulated robot's (it records the
episode, checks the emergency stop before every action, runs tasks); only its env differs.
`RemoteEnv` sends each request down a pipe to the server process, which relays it to the
bridge's WebSocket (`wam.api.bridge_link`) and relays the answer back. Its spaces, and the
features its episodes are recorded with, come from the robot's declaration, never from here.
A bridge that goes away answers the request in flight with "lost": the worker then ends the
episode as "interrupted", keeping every step the robot really took.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from wam.bridge.spec import RobotDeclaration
from wam.bridge.wire import pack, unpack
from wam.data.layout import ACTION_KEY, IMAGE_PREFIX, STATE_KEY, Feature


class BridgeLost(Exception):
    """The bridge went away or did not answer in time: the robot is offline."""


class BridgeRefused(ValueError):
    """The bridge answered the request with an error (the driver refused it)."""


def camera_key(camera: str) -> str:
    return f"{IMAGE_PREFIX}{camera}"


def remote_features(declaration: RobotDeclaration, images: bool = True) -> dict[str, Feature]:
    """The dataset features of a declared robot: its state and action names, and a video per camera."""
    features = {camera_key(c): Feature("video", (h, w, 3), ("height", "width", "channels"))
                for c, (h, w) in declaration.cameras.items()} if images else {}
    return features | {
        STATE_KEY: Feature("float32", (declaration.state_dim,), declaration.state_names),
        ACTION_KEY: Feature("float32", (declaration.action_dim,), declaration.action_names),
        "reward": Feature("float32", (1,)),
        "success": Feature("bool", (1,)),
    }


class RemoteEnv(gym.Env):
    """`link` is the worker's end of its pipe to the server; `timeout_s` bounds each round trip."""

    def __init__(self, declaration: RobotDeclaration, link, max_episode_steps: int, timeout_s: float = 10.0):
        d = self.declaration = declaration
        self.link, self.max_episode_steps, self.timeout_s = link, max_episode_steps, timeout_s
        self.action_space = gym.spaces.Box(np.asarray(d.action_low, np.float32), np.asarray(d.action_high, np.float32))
        spaces = {"state": gym.spaces.Box(-np.inf, np.inf, (d.state_dim,), np.float32)}
        if d.cameras:
            views = {c: gym.spaces.Box(0, 255, (h, w, 3), np.uint8) for c, (h, w) in d.cameras.items()}
            spaces["images"] = gym.spaces.Dict(views)
            spaces["image"] = views[next(iter(views))]
        self.observation_space = gym.spaces.Dict(spaces)
        self.metadata = {"render_fps": d.fps}
        self.task_text: str | None = None
        self.request_id = 0
        self.steps = 0

    def _request(self, header: dict, arrays: dict | None = None) -> tuple[dict, dict]:
        self.request_id += 1
        self.link.send_bytes(pack({**header, "id": self.request_id}, arrays))
        while True:
            if not self.link.poll(self.timeout_s):
                raise BridgeLost(f"the robot's bridge did not answer {header['type']!r} within {self.timeout_s:.0f} s")
            reply, replied = unpack(self.link.recv_bytes())
            if reply.get("id") != self.request_id:  # the late answer to a request that already timed out
                continue
            if reply.get("type") == "lost":
                raise BridgeLost(f"the robot's bridge is gone ({reply.get('reason', 'disconnected')})")
            if reply.get("type") == "error":
                raise BridgeRefused(f"the robot refused {header['type']!r}: {reply.get('message', '')}"[:500])
            return reply, replied

    def _observation(self, reply: dict, arrays: dict) -> dict:
        d = self.declaration
        state = np.asarray(arrays.get("state", ()), np.float32)
        if state.shape != (d.state_dim,):
            raise BridgeRefused(f"the bridge sent a state of shape {list(state.shape)}; the robot declared {d.state_dim}")
        obs = {"state": state}
        if d.cameras:
            images = {}
            for camera, (h, w) in d.cameras.items():
                image = arrays.get(f"image.{camera}")
                if image is None or image.shape != (h, w, 3) or image.dtype != np.uint8:
                    raise BridgeRefused(f"the bridge sent camera {camera!r} as "
                                        f"{None if image is None else (list(image.shape), str(image.dtype))}; "
                                        f"declared {h}x{w}x3 uint8")
                images[camera] = image
            obs["images"], obs["image"] = images, images[next(iter(images))]
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        reply, arrays = self._request({"type": "reset", "seed": seed, "task": self.task_text})
        self.steps = 0
        return self._observation(reply, arrays), {}

    def step(self, action):
        reply, arrays = self._request({"type": "step"}, {"action": np.asarray(action, np.float32).reshape(-1)})
        self.steps += 1
        obs = self._observation(reply, arrays)
        terminated = bool(reply.get("terminated", False))
        info = {"success": bool(reply.get("success", False)), "clipped": bool(reply.get("clipped", False))}
        return obs, float(reply.get("reward", 0.0)), terminated, self.steps >= self.max_episode_steps, info
