"""The messages of the control channel (WebSocket /v1/control), in one place (Pydantic).

A message from the agent carries a request id and a batch of per-robot commands; the
server answers it with one reply that carries one outcome per command, in order:

    {"id": 7, "commands": [{"op": "step", "robot": "reach-v3-0", "lease_id": "...", "action": [0, 0.5, 0, 0]},
                           {"op": "step", "robot": "reach-v3-1", "actions": [[0, 0, 0, 0], [0, 0, 0, 1]]},
                           {"op": "reset", "robot": "reach-v3-2", "seed": 3},
                           {"op": "observe", "robot": "reach-v3-3"}]}
    {"type": "reply", "id": 7, "results": [{"robot": "reach-v3-0", "state": [...], "reward": 0.1, "done": false, ...},
                                           {"robot": "reach-v3-1", "error": {"code": "conflict", "status": 409, ...}}, ...]}

Inputs are as strict as the HTTP bodies (`wam.api.schemas`: numbers are JSON numbers, ids
have their patterns) and unknown fields are refused, so a misspelt `lease` is named rather
than ignored. An episode a step ends is committed in the background and announced by a
`recorded` message once it is durable in the dataset (with `wait_recorded`, the reply waits).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from wam.api.schemas import MAX_CHUNK, Flag, Integer, LeaseId, Number, RobotId
from wam.api.spec import MAX_ROBOTS

RequestId = Annotated[Integer, Field(ge=0, le=2**53)] | Annotated[str, StringConstraints(max_length=64)]
ERROR_CODES = {400: "bad_message", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid", 500: "internal",
               503: "unavailable", 504: "timeout"}  # and "estopped" (409): the robot is emergency-stopped


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepCommand(_Strict):
    op: Literal["step"]
    robot: RobotId
    lease_id: LeaseId | None = None
    action: list[Number] | None = Field(None, max_length=64, description="one action: numbers only")
    actions: list[Annotated[list[Number], Field(max_length=64)]] | None = Field(
        None, max_length=MAX_CHUNK, description="an action chunk, executed in order until the episode ends")


class ResetCommand(_Strict):
    op: Literal["reset"]
    robot: RobotId
    lease_id: LeaseId | None = None
    task: str | None = Field(None, max_length=256, description="a Meta-World task name (any instruction on a remote robot); default: the robot's current task")
    seed: Integer | None = Field(None, ge=0, le=2**31 - 1)


class ObserveCommand(_Strict):
    """The robot's latest observation (read scope; no lease, no call to the robot)."""

    op: Literal["observe"]
    robot: RobotId


Command = Annotated[Union[StepCommand, ResetCommand, ObserveCommand], Field(discriminator="op")]


class ControlMessage(_Strict):
    id: RequestId = Field(description="echoed in the reply (and in the `recorded` messages of episodes it ended)")
    commands: list[Command] = Field(..., min_length=1, max_length=MAX_ROBOTS, description="at most one per robot")
    wait_recorded: Flag = Field(False, description="reply once the episodes these commands ended are committed (with "
                                "their episode_id); default: reply at once, a `recorded` message follows each commit")
    sim_state: Flag = Field(False, description="add Meta-World's privileged 39-d state to each outcome")


class ControlError(BaseModel):
    code: str = Field(description=", ".join(sorted(set(ERROR_CODES.values()) | {"estopped"})))
    status: int = Field(description="the HTTP status the same request would have had")
    detail: str


class Outcome(BaseModel):
    """One robot's outcome: its observation after the command, or `error`."""

    robot: str
    error: ControlError | None = None
    task: str | None = None
    episode_step: int | None = None
    state: list[float] | None = None
    sim_state: list[float] | None = None
    reward: float | None = None
    done: bool | None = None
    success: bool | None = None
    terminated: bool | None = None
    truncated: bool | None = None
    steps: int | None = Field(None, description="a step: the actions executed (a chunk stops where its episode ends)")
    rewards: list[float] | None = Field(None, description="a chunk: the reward of each action executed")
    recording: bool | None = Field(None, description="this command ended an episode; a `recorded` message follows")
    episode_id: int | None = Field(None, description="with wait_recorded: the episode this command ended, committed")


class ControlReply(BaseModel):
    type: Literal["reply"] = "reply"
    id: RequestId | None = None
    results: list[Outcome] = []
    error: ControlError | None = Field(None, description="the message as a whole was refused (nothing was run)")


class Recorded(BaseModel):
    """An episode that a command of request `id` ended is committed to the dataset (or failed to be: `error`)."""

    type: Literal["recorded"] = "recorded"
    id: RequestId
    robot: str
    episode_id: int | None = None
    error: ControlError | None = None
