"""Every request and response body of the Physical API, in one place (Pydantic).

Inputs are strict: a number is a JSON number (never a boolean, a string or null), an
integer is a JSON integer, a flag is true or false, and an id has its own pattern (a
lease id is 16 hex digits; an episode id in a path is a plain non-negative integer, so
`%20%31`, `1.0` and `+1` are refused rather than read as 1). Non-finite numbers are
refused where a number must be finite; actions keep theirs so that the step route can
name the value and its place.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, Strict, StringConstraints

from wam.api.spec import MAX_ROBOTS

MAX_CHUNK = 64  # actions in one step request

Number = Annotated[float, Strict()]  # an int or a float; NaN and infinities pass, for the step route to name
FiniteNumber = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Integer = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
LEASE_ID = r"^[0-9a-f]{16}$"  # secrets.token_hex(8), as wam.api.fleet makes them
LeaseId = Annotated[str, StringConstraints(pattern=LEASE_ID)]
RobotId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
RobotCount = Annotated[Integer, Field(ge=1, le=MAX_ROBOTS)]


def _episode_index(value):
    if isinstance(value, str) and re.fullmatch(r"0|[1-9][0-9]{0,18}", value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"an episode id is a plain non-negative integer (0, 1, 2, ...), not {str(value)[:40]!r}")


EpisodeId = Annotated[int, BeforeValidator(_episode_index)]  # a path parameter


class Problem(BaseModel):
    detail: str


class ActionSpace(BaseModel):
    shape: list[int]
    low: list[float]
    high: list[float]


class Robot(BaseModel):
    id: str
    env: str
    task: str | None = None
    status: str = Field(description="starting | ready | running | offline | crashed | failed | stopped")
    estopped: bool = False
    leased: bool = False
    lease_expires_at: float | None = None
    run_id: str | None = None
    restarts: int = 0
    last_error: str | None = None
    steps: int = 0


class RobotDetail(Robot):
    task_text: str | None = None
    action_space: ActionSpace | None = None
    observation_space: dict[str, dict] | None = None
    obs: str = "pixels"
    image_size: int | None = Field(None, description="a simulated robot's camera size; a remote robot's cameras are in its declaration")
    max_episode_steps: int = 0
    capabilities: list[str] = []
    declaration: dict | None = Field(None, description="a remote robot's declaration (state and action names, bounds, "
                                     "cameras, fps, robot type), once a bridge has attached it")


class Observation(BaseModel):
    robot: str
    task: str | None = None
    episode_step: int = 0
    done: bool = True
    reward: float = 0.0
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    state: list[float] | None = None
    sim_state: list[float] | None = Field(None, description="Meta-World's privileged 39-d state (simulated robots only)")
    has_image: bool = False


class LeaseRequest(BaseModel):
    ttl_s: FiniteNumber = Field(60.0, gt=0, le=3600, description="seconds until the lease expires unless renewed")


class Lease(BaseModel):
    lease_id: str
    robot: str
    expires_at: float


class ResetRequest(BaseModel):
    lease_id: LeaseId | None = None
    task: str | None = Field(None, max_length=256, description="a Meta-World task name (any instruction on a remote robot); default: the robot's current task")
    seed: Integer | None = Field(None, ge=0, le=2**31 - 1)


class StepRequest(BaseModel):
    lease_id: LeaseId | None = None
    action: list[Number] | None = Field(None, max_length=64, description="one action: numbers only")
    actions: list[Annotated[list[Number], Field(max_length=64)]] | None = Field(
        None, max_length=MAX_CHUNK, description="an action chunk, executed in order")
    wait_recorded: Flag = Field(True, description="if this step ends the episode, answer once it is committed (durable, "
                                "with its episode_id); false: answer at once and commit in the background (listed when "
                                "it lands, ~25 ms; a server killed in between loses it)")


class StepResult(BaseModel):
    observation: Observation
    rewards: list[float]
    steps: int
    episode_id: int | None = Field(None, description="set when this step ended the episode: its id in the dataset")
    recording: bool = Field(False, description="this step ended the episode and it is being committed in the background")


class FleetStep(StepRequest):
    robot: RobotId


class FleetStepRequest(BaseModel):
    steps: list[FleetStep] = Field(..., min_length=1, max_length=1024, description="at most one entry per robot")


class FleetStepOutcome(BaseModel):
    robot: str
    status: int = Field(description="the HTTP status this robot's step alone would have had")
    detail: str | None = None
    result: StepResult | None = None


class TaskRequest(BaseModel):
    task: str = Field(..., min_length=1, max_length=256, description="a Meta-World task name, or any instruction for remote robots (it is recorded as the episode's task)")
    policy: str = Field("expert", min_length=1, max_length=1024, description="'expert', 'random' or a finetuned WAM run directory")
    robots: RobotCount | Annotated[list[RobotId], Field(max_length=MAX_ROBOTS)] = Field(
        1, description="how many idle robots, or which ones")
    episodes: Integer = Field(1, ge=1, le=100000)
    seed: Integer = Field(0, ge=0, le=2**31 - 1)


class TaskRun(BaseModel):
    id: str
    task: str
    policy: str
    robots: list[str]
    episodes: int
    episodes_done: int
    successes: int
    status: str = Field(description="running | finished | cancelled | failed | interrupted")
    error: str = ""
    owner: str = Field("", description="id of the key that started the run (it, or an admin over its robots, may cancel it)")
    created_at: dt.datetime
    updated_at: dt.datetime


class Episode(BaseModel):
    id: int
    robot: str
    task: str
    success: bool
    length: int
    run_id: str
    end_reason: str
    created_at: dt.datetime


class KeyRequest(BaseModel):
    scope: str = Field(..., pattern="^(read|control|admin)$")
    robots: str = Field("*", min_length=1, max_length=256)
    name: str = Field("", max_length=128)


class Key(BaseModel):
    id: str
    scope: str
    robots: str
    name: str
    revoked: bool = False
    secret: str | None = Field(None, description="the key itself; shown once, when it is created")


class Health(BaseModel):
    status: str
    robots: int
    ready: int
    version: str
