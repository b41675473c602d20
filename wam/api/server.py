"""The Physical API server: `wam serve --robots SPEC --data DIR`.

`create_app(config)` builds the FastAPI app; its lifespan opens the store, the dataset
recorder and the fleet (one worker process per robot), marks runs a killed server left
running as interrupted, and on shutdown closes every robot so the episodes they were
recording are committed. What no route should see (heads and bodies too large or too
slow) is refused by `wam.api.limits`; a request that fails validation is answered 422
with its values made JSON-safe (a NaN or an infinity in a body is named, never a 500).
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import math
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from wam.api import schemas
from wam.api.auth import Authenticator
from wam.api.fleet import Fleet, FleetError
from wam.api.limits import Limits, LimitsMiddleware, uvicorn_config
from wam.api.recorder import Recorder
from wam.api.routes import bridge, control, episodes, keys, robots, tasks
from wam.api.spec import parse_fleet
from wam.api.store import Store
from wam.api.tasks import TaskRunner
from wam.api.worker import WorkerConfig

MAX_BODY_BYTES = Limits.max_body_bytes
API_VERSION = "1.0.0"


@dataclass
class ServerConfig:
    robots: str
    data: Path
    db: str | None = None  # SQLAlchemy URL; default: SQLite beside the dataset
    obs: str = "pixels"
    size: int = 64
    max_episode_steps: int = 300
    timeout_s: float = 30.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_head_bytes: int = Limits.max_head_bytes  # request line and headers; over it: 431
    head_timeout_s: float = Limits.head_timeout_s  # a head not complete in this time: 408, connection closed
    body_timeout_s: float = Limits.body_timeout_s  # a body not complete in this time after its head: 408
    start_method: str = "forkserver"
    progress: bool = False  # a progress bar while the robots start (64 take about 85 s on 2 cores)
    runs: Path | None = None  # the finetuned runs a task may name as its policy; default: `runs` beside the dataset
    ray: str | None = None  # place the simulated robots' workers on this Ray cluster (wam.api.ray_robots); control stays here
    extra: dict = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        return self.db or default_db(self.data)

    @property
    def limits(self) -> Limits:
        return Limits(self.max_head_bytes, self.max_body_bytes, self.head_timeout_s, self.body_timeout_s)


def default_db(data: Path) -> str:
    return f"sqlite:///{Path(data).resolve().parent / (Path(data).name + '.api.db')}"


def create_app(config: ServerConfig) -> FastAPI:
    specs = parse_fleet(config.robots)
    remote = [spec.robot_id for spec in specs if spec.remote]
    if remote and len(remote) != len(specs):
        raise ValueError(f"robots {', '.join(remote[:4])} are remote and others are simulated: a server records one kind "
                         "of robot into its dataset, so serve the remote robots on a server of their own")
    if config.obs not in ("pixels", "state"):
        raise ValueError(f"obs must be 'pixels' or 'state', got {config.obs!r}")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = Store(config.db_url)
        interrupted = store.interrupt_running()
        worker = WorkerConfig(Path(config.data), config.obs, config.size, config.max_episode_steps)
        recorder = Recorder(worker, store, remote=bool(remote))
        fleet = Fleet(specs, worker, recorder.record, config.timeout_s, config.start_method, ray=config.ray)
        app.state.config, app.state.store, app.state.recorder, app.state.fleet = worker, store, recorder, fleet
        app.state.auth, app.state.tasks, app.state.interrupted = Authenticator(store), TaskRunner(fleet, store, config.runs), interrupted
        app.state.loop = asyncio.get_running_loop()  # for callers in other threads (tests, embedding apps)
        from wam.train.progress import progress_bar

        with progress_bar("starting robots", len(specs), "robots", enabled=config.progress) as advance:
            await fleet.start(on_started=lambda: advance(1))
        failed = [h.robot_id for h in fleet.robots.values() if h.status == "failed"]
        if failed and config.progress:
            print(f"robots that failed to start (see GET /v1/robots/<id>): {', '.join(failed)}")
        # Everything imported so far (torch, the simulator, ...) lives as long as the server: keep it out of the
        # garbage collector's full passes, which otherwise scan it all and stall requests for ~100 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.tasks.stop()
            await fleet.stop()
            recorder.close()
            store.close()

    app = FastAPI(title="wam Physical API", version=API_VERSION,
                  description="One agent, many robots: simulated, dream and real robots behind one API; "
                              "every episode is recorded for training.", lifespan=lifespan)

    @app.exception_handler(FleetError)
    async def fleet_error(request: Request, error: FleetError):
        return JSONResponse({"detail": str(error)}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return JSONResponse({"detail": json_safe(error.errors())}, status_code=422)

    app.add_middleware(LimitsMiddleware, limits=config.limits)

    @app.get("/v1/health", response_model=schemas.Health, tags=["health"])
    def health(request: Request):
        fleet = request.app.state.fleet
        ready = sum(h.status in ("ready", "running") for h in fleet.robots.values())
        return schemas.Health(status="ok", robots=len(fleet.robots), ready=ready, version=app.version)

    for module in (robots, tasks, episodes, keys, control, bridge):
        app.include_router(module.router)
    return app


def json_safe(value, depth: int = 0):
    """`value` as plain JSON, short: NaN and infinities as strings, long strings and lists cut, objects as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "..."
    if depth >= 8:
        return "..."
    if isinstance(value, dict):
        return {str(k)[:200]: json_safe(v, depth + 1) for k, v in list(value.items())[:32]}
    if isinstance(value, (list, tuple)):
        items = [json_safe(v, depth + 1) for v in list(value[:16])]
        return items + ([f"... {len(value) - 16} more"] if len(value) > 16 else [])
    return json_safe(str(value), depth)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host(host: str, public: bool) -> None:
    if not is_loopback(host) and not public:
        raise ValueError(f"refusing to listen on {host}: the API drives robots; pass --public to listen beyond loopback")


def check_startup(config: ServerConfig, host: str = "127.0.0.1", public: bool = False) -> None:
    """Refuse, with a ValueError naming the value, what would otherwise fail inside the server's start-up or at a
    robot's first reset: an unknown env family, a dream of no finetuned run, a database that does not open, a
    --data that cannot take this fleet's episodes (a file, another robot's dataset, one another server writes)."""
    from sqlalchemy.exc import SQLAlchemyError

    from wam.envs.registry import REGISTRY
    from wam.errors import WamError
    from wam.runs import load_run

    _check_host(host, public)
    specs = parse_fleet(config.robots)
    for env_id in dict.fromkeys(spec.env_id for spec in specs if not spec.remote):
        family, name = env_id.split("/", 1)
        if family not in REGISTRY:
            raise ValueError(f"robot spec {env_id}: unknown env family {family!r}; known: {', '.join(sorted(REGISTRY))}, remote")
        if family == "dream":
            try:
                load_run(name, "finetune")
            except WamError as error:
                raise ValueError(f"robot spec {env_id}: {error}") from None
    data = Path(config.data)
    if data.exists() and not data.is_dir():
        raise ValueError(f"--data {data} is a file, not a dataset directory")
    scratch = Store("sqlite://")  # the dataset as the start-up opens it, indexed into a throwaway store, closed at once
    try:
        worker = WorkerConfig(data, config.obs, config.size, config.max_episode_steps)
        Recorder(worker, scratch, remote=any(spec.remote for spec in specs)).close()
    except (WamError, OSError, ValueError) as error:
        raise ValueError(f"--data {data}: {error}") from None
    finally:
        scratch.close()
    try:
        Store(config.db_url).close()
    except (SQLAlchemyError, ImportError) as error:
        from sqlalchemy.engine import make_url

        shown = make_url(config.db_url).render_as_string(hide_password=True)
        raise ValueError(f"database {shown}: cannot open it ({str(error).strip().splitlines()[0]})") from None


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000, public: bool = False, extend=None) -> None:
    """Run the server until interrupted; refuses a non-loopback address unless `public`. `extend(app)` adds to the
    app what later stages serve beside the API (the command line adds the web console)."""
    import uvicorn

    _check_host(host, public)
    app = create_app(config)
    if extend is not None:
        extend(app)
    try:
        uvicorn.Server(uvicorn_config(app, config.limits, host=host, port=port, log_level="warning")).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown, which has recorded every episode
        pass


class BackgroundServer:
    """A server on a free loopback port in a thread of this process (examples, benchmarks, notebooks).

    The robots still run in their own processes; only the HTTP front end shares the caller's process.
    """

    def __init__(self, config: ServerConfig, port: int | None = None):
        import socket
        import threading

        import uvicorn

        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.config, self.url = config, f"http://127.0.0.1:{port}"
        self.app = create_app(config)
        self.server = uvicorn.Server(uvicorn_config(self.app, config.limits, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="wam-api", daemon=True)

    def start(self, timeout_s: float = 300.0) -> "BackgroundServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server on {self.url} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(120)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
