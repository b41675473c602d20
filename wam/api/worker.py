"""One robot in its own process: the env, the episode being recorded, and the policy it runs.

The server talks to a worker over a pipe with `(command, payload)` messages and gets
`("reply", result)`, `("error", (kind, message))` or, while a policy runs autonomously,
`("event", payload)` messages back. Running each robot in its own process is what lets
one slow or crashed simulator leave the rest of the fleet alone: the server only ever
waits on the robot it is talking to, and a dead worker is noticed as a closed pipe.

Episodes are recorded here, where the frames are: when an episode ends (success, time
limit, a reset, an emergency stop, a cancelled run) the worker stages it (checks it and
encodes its video into the dataset's staging folder) and hands the staged episode to the
server, whose single dataset writer commits it. An episode cut short by a crash is never
staged, so it never appears.

An emergency stop does not wait in the pipe behind queued work: the server sets a flag in
memory it shares with the worker, which checks it before every single action, so the rest
of a chunk or of a task never reaches the robot.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.api.remote_env import BridgeLost
from wam.api.spec import REMOTE_FAMILY, RobotSpec

ACTION_KEY, STATE_KEY, IMAGE_KEY = "action", "observation.state", "observation.images.main"
# The signals a worker shares with the server (a RawArray of doubles, no lock: one writer each): the server sets STOP
# when the robot is emergency-stopped; the worker counts every action it executes and notes when (time.monotonic()).
STOP, EXECUTED, LAST_ACTION = 0, 1, 2
SIGNALS = 3


@dataclass(frozen=True)
class WorkerConfig:
    """How every robot of a server observes and records."""

    data: Path
    obs: str = "pixels"  # "pixels" (image + state) or "state" (no rendering)
    size: int = 64
    max_episode_steps: int = 300


class RobotStateError(Exception):
    """The command does not fit the robot's state (step before reset, ...): the server answers 409."""


class RobotStopped(RobotStateError):
    """The robot is emergency-stopped: no action of the command ran."""


def _space_summary(space, prefix: str = "") -> dict:
    """Shape and dtype of each observation entry; nested ones (a camera of `images`) as `images.<camera>`."""
    out = {}
    for key, value in space.spaces.items():
        if value.shape is None:
            out |= _space_summary(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = {"shape": list(value.shape), "dtype": str(value.dtype)}
    return out


def dataset_features(config: WorkerConfig) -> dict:
    from wam.envs.collect import dataset_features as collect_features

    features = collect_features(config.size, actions=True)
    if config.obs == "state":
        features.pop(IMAGE_KEY)
    return features


def _make_policy(name: str, task: str, seed: int, env):
    """`expert` (Meta-World's scripted policy), `random`, or the path of a finetuned WAM run."""
    if name == "expert":
        from wam.envs.experts import ScriptedExpert
        from wam.envs.tasks import MT50

        if task not in MT50:
            raise ValueError(f"the expert policy knows Meta-World tasks only; {task!r} is not one")
        return ScriptedExpert(task, noise=0.0, seed=seed)
    if name == "random":
        return _RandomPolicy(seed, env.action_space)
    from wam.policy import load

    return load(name, device="cpu")


class _RandomPolicy:
    """Uniform actions within the robot's action space."""

    def __init__(self, seed: int, space):
        self.rng, self.low, self.high = np.random.default_rng(seed), space.low, space.high

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, obs) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class Robot:
    """An env plus the episode it is recording; `signals` (see STOP) is shared with the server, or None."""

    def __init__(self, spec: RobotSpec, config: WorkerConfig, signals=None, link=None):
        self.spec, self.config, self.link = spec, config, link
        self.signals = signals if signals is not None else [0.0] * SIGNALS
        self.remote = spec.env_id.startswith(REMOTE_FAMILY + "/")
        self.features = {} if self.remote else dataset_features(config)
        self.cameras = {IMAGE_KEY: None}  # feature key -> camera in obs["images"] (None: obs["image"])
        self.fps = 0.0
        self.env = None
        self.task: str | None = None
        if spec.task is not None:
            self._build(spec.task)
        self.obs: dict | None = None
        self.frames: dict[str, list] = {}
        self.episode_step = 0
        self.episode_seed = 0
        self.done = True
        self.last: dict = {"reward": 0.0, "success": False, "terminated": False, "truncated": False}
        self.run = ""  # the autonomous run recording this episode, if any

    # -- env ------------------------------------------------------------------------------
    def _build(self, task: str) -> None:
        from wam.envs.registry import make

        if self.remote:
            if self.env is None:
                raise BridgeLost(f"robot {self.spec.robot_id} has no bridge connected; start the bridge next to the robot")
            self.env.task_text, self.task = task, task
            return
        if self.env is not None:
            self.env.close()
        family = self.spec.env_id.split("/", 1)[0]
        if family == "metaworld":
            from wam.envs.tasks import MT50

            if task not in MT50:
                raise ValueError(f"task {task!r} is not a Meta-World task name (e.g. reach-v3)")
            self.env = make(f"metaworld/{task}", obs=self.config.obs, size=self.config.size,
                            max_episode_steps=self.config.max_episode_steps)
        elif family == "scan":  # a scanned scene, its twin or a cousin: the task is one of the tabletop tasks
            self.env = make(self.spec.env_id, task=task, obs=self.config.obs, size=self.config.size,
                            max_episode_steps=self.config.max_episode_steps)
        else:
            self.env = make(self.spec.env_id, task=task, decode_images=self.config.obs == "pixels",
                            max_episode_steps=self.config.max_episode_steps)
        self.task = task

    def describe(self) -> dict:
        space = self.env.action_space if self.env is not None else None
        observation = self.env.observation_space if self.env is not None else None
        return {
            "id": self.spec.robot_id, "env": self.spec.env_id, "task": self.task,
            "task_text": getattr(self.env, "task_text", self.task),
            "action_space": {"shape": list(space.shape), "low": space.low.tolist(), "high": space.high.tolist()} if space else None,
            "observation_space": _space_summary(observation) if observation else None,
            "obs": self.config.obs, "image_size": self.config.size if self.config.obs == "pixels" and not self.remote else None,
            "max_episode_steps": self.config.max_episode_steps,
            **({"declaration": self.env.declaration.to_json()} if self.remote and self.env is not None else {}),
        }

    def attach(self, declaration: dict) -> dict:
        """A bridge connected: the robot is the one it declares (its spaces, cameras and rate)."""
        from wam.api.remote_env import RemoteEnv, camera_key, remote_features
        from wam.bridge.spec import RobotDeclaration

        staged = self.end_episode("interrupted")
        d = RobotDeclaration.from_json(declaration)
        self.env = RemoteEnv(d, self.link, self.config.max_episode_steps)
        pixels = self.config.obs == "pixels"
        self.features = remote_features(d, images=pixels)
        self.cameras = {camera_key(c): c for c in d.cameras} if pixels else {}
        self.fps = d.fps
        return {"staged": staged, "description": self.describe()}

    def detach(self) -> dict:
        """The bridge went away: the episode ends "interrupted" with every step the robot took."""
        staged = self.end_episode("interrupted")
        self.env = None
        return {"staged": staged, "observation": self.observation()}

    def _images(self, obs: dict) -> dict:
        return {key: obs["image"] if camera is None else obs["images"][camera]
                for key, camera in self.cameras.items() if key in self.features}

    def observation(self) -> dict:
        """The latest observation as plain arrays (the server turns it into JSON or PNG)."""
        obs = self.obs or {}
        return {"state": obs.get("state"), "sim_state": obs.get("sim_state"), "image": obs.get("image"), "task": self.task,
                "episode_step": self.episode_step, "done": self.done, **self.last}

    # -- control --------------------------------------------------------------------------
    def reset(self, task: str | None = None, seed: int | None = None) -> dict:
        staged = self.end_episode("reset")
        task = task or self.task
        if task is None:
            raise RobotStateError(f"robot {self.spec.robot_id} has no task yet; reset it with one (task=...)")
        if task != self.task or self.env is None:
            self._build(task)
        self.episode_seed = int(seed if seed is not None else np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
        self.obs, _ = self.env.reset(seed=self.episode_seed)
        self.frames = {"state": [self.obs["state"]], "images": {k: [v] for k, v in self._images(self.obs).items()},
                       "action": [], "reward": [0.0], "success": [False]}
        self.episode_step, self.done = 0, False
        self.last = {"reward": 0.0, "success": False, "terminated": False, "truncated": False}
        return {"observation": self.observation(), "staged": staged, "description": self.describe()}

    def stopped(self) -> bool:
        return self.signals[STOP] != 0.0

    def step(self, actions: np.ndarray) -> dict:
        """Execute a chunk in order. An emergency stop is checked before every action: the rest of the chunk never
        runs, the answer says so (`estopped`), and the episode stays open for the stop to end it."""
        if self.done:
            raise RobotStateError(f"robot {self.spec.robot_id} has no episode running; reset it first")
        chunk = np.asarray(actions, dtype=np.float32).reshape(-1, self.env.action_space.shape[0])
        rewards, staged = [], None
        for action in chunk:
            if self.stopped():
                if not rewards:
                    raise RobotStopped(f"robot {self.spec.robot_id} is emergency-stopped; none of this chunk's "
                                       f"{len(chunk)} action(s) ran")
                return {"observation": self.observation(), "rewards": rewards, "staged": None, "estopped": len(chunk)}
            self.obs, reward, terminated, truncated, info = self.env.step(action)
            self.signals[EXECUTED] += 1
            self.signals[LAST_ACTION] = time.monotonic()
            self.episode_step += 1
            success = bool(info.get("success", False))
            self.frames["state"].append(self.obs["state"])
            for key, image in self._images(self.obs).items():
                self.frames["images"][key].append(image)
            self.frames["action"].append(action)
            self.frames["reward"].append(float(reward))
            self.frames["success"].append(success)
            rewards.append(float(reward))
            self.last = {"reward": float(reward), "success": success, "terminated": bool(terminated), "truncated": bool(truncated)}
            if terminated or truncated:
                staged = self.end_episode("success" if terminated else "time_limit")
                break
        return {"observation": self.observation(), "rewards": rewards, "staged": staged}

    def end_episode(self, reason: str, run: str = ""):
        """Stage the running episode (if it took a step) for the server to commit; None if nothing to record."""
        if self.done or not self.frames.get("action"):
            self.done = True
            return None
        from wam.data.episode import Episode
        from wam.data.video import VideoConfig
        from wam.data.writer import stage_episode
        from wam.envs.metaworld_env import CONTROL_FPS

        self.done = True
        f = self.frames
        actions = np.stack(f["action"] + [f["action"][-1]])  # the last frame repeats the last action: none follows it
        data = {STATE_KEY: np.stack(f["state"]).astype(np.float32), ACTION_KEY: actions.astype(np.float32),
                "reward": np.asarray(f["reward"], dtype=np.float32), "success": np.asarray(f["success"], dtype=bool)}
        images = {key: np.stack(frames) for key, frames in f["images"].items()}
        info = {"env": self.spec.env_id if self.spec.task is None else f"metaworld/{self.task}", "robot": self.spec.robot_id,
                "seed": self.episode_seed, "source": "api", "end_reason": reason, "run": run or self.run}
        episode = Episode(getattr(self.env, "task_text", None) or self.task, images, data, success=bool(f["success"][-1]), info=info)
        fps = round(self.fps) if self.remote else CONTROL_FPS
        return stage_episode(self.config.data, episode, self.features, fps, VideoConfig())

    def run_policy(self, conn, policy: str, episodes: int, run: str, seed: int = 0, task: str | None = None) -> dict:
        """Run `episodes` episodes autonomously, sending an event after every step; stops early on "cancel" and, before
        the next action, on an emergency stop (the episode then ends as "estop")."""
        earlier = self.end_episode("reset")  # an episode driven by hand and left open is recorded, but not as the run's
        if earlier is not None:
            conn.send(("event", {"observation": self.observation(), "staged": earlier}))
        self.run = run
        try:
            agent = None
            for number in range(episodes):
                if self.stopped():
                    return {"cancelled": True, "estopped": True, "episodes": number}
                reply = self.reset(task=task, seed=seed + number)
                if agent is None:
                    agent = _make_policy(policy, self.task, seed, self.env)
                agent.reset(self.task) if hasattr(agent, "tasks") else agent.reset(seed=seed + number)
                conn.send(("event", {"observation": reply["observation"], "staged": reply["staged"]}))
                while not self.done:
                    if self.stopped() or (conn.poll() and conn.recv()[0] == "cancel"):
                        stopped = self.stopped()  # set before any cancel is sent, so a stop is never recorded as a cancel
                        staged = self.end_episode("estop" if stopped else "cancel")
                        conn.send(("event", {"observation": self.observation(), "staged": staged}))
                        return {"cancelled": True, "estopped": stopped, "episodes": number}
                    action = agent.act(self.obs)
                    try:
                        result = self.step(action[None])
                    except RobotStopped:  # stopped while the policy was thinking: nothing ran; end the episode above
                        continue
                    except BridgeLost:  # a remote robot's bridge went away: keep what it did
                        staged = self.end_episode("interrupted")
                        conn.send(("event", {"observation": self.observation(), "staged": staged}))
                        raise
                    if result.get("estopped"):
                        continue
                    conn.send(("event", {"observation": result["observation"], "staged": result["staged"],
                                         "episode_done": self.done, "success": self.last["success"]}))
            return {"cancelled": False, "episodes": episodes}
        finally:
            self.run = ""

    def close(self):
        staged = self.end_episode("close")
        if self.env is not None:
            self.env.close()
        return staged


def robot_main(conn, spec: RobotSpec, config: WorkerConfig, signals=None, link=None) -> None:
    """The worker process: build the robot, then answer commands until "close" or the pipe closes."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle: it closes its robots in order
    torch.set_num_threads(1)
    try:
        robot = Robot(spec, config, signals, link)
        conn.send(("ready", robot.describe()))
    except Exception as error:  # noqa: BLE001 - reported to the server, which marks the robot failed
        conn.send(("error", (type(error).__name__, f"{spec.robot_id}: {error}")))
        return
    while True:
        try:
            command, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if command == "close":
                conn.send(("reply", {"staged": robot.close()}))
                return
            if command == "run_policy":
                result = robot.run_policy(conn, **payload)
            elif command == "cancel":  # a cancel that arrived after its run ended: nothing waits for an answer
                continue
            elif command == "observe":
                result = robot.observation()
            elif command == "describe":
                result = robot.describe()
            elif command == "end_episode":
                result = {"observation": robot.observation(), "staged": robot.end_episode(**payload)}
            elif command == "sleep":  # for tests: a robot that is slow to answer
                time.sleep(float(payload["seconds"]))
                result = {}
            elif command == "crash":  # for tests: a robot whose simulator dies
                import os

                os._exit(3)
            else:
                result = getattr(robot, command)(**payload) if command in ("reset", "step", "attach", "detach") else None
                if result is None:
                    raise ValueError(f"unknown robot command {command!r}")
            conn.send(("reply", result))
        except RobotStopped as error:
            conn.send(("error", ("estop", str(error))))
        except BridgeLost as error:
            conn.send(("error", ("offline", str(error))))
        except RobotStateError as error:
            conn.send(("error", ("state", str(error))))
        except ValueError as error:
            conn.send(("error", ("value", str(error))))
        except Exception as error:  # noqa: BLE001 - the robot keeps serving; the server reports it
            conn.send(("error", ("internal", f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")))
