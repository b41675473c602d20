"""`wam serve`, `wam keys ...`, `wam robots ...`, `wam tasks ...`, `wam mcp`: the Physical API's command line.

The robot and task commands are thin calls into `wam.api.Client`; they read the server's
address and key from --url/--key or WAM_API_URL/WAM_API_KEY and print JSON.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Optional

import typer
from wam.cli.checks import api_url, at_least, db_url, directory_out, in_range, positive, shown_db
from wam.cli.common import console, errors, fail
keys_app = typer.Typer(help="Create, list and revoke API keys (stored hashed in the server's database).", no_args_is_help=True)
robots_app = typer.Typer(help="Look at and drive the robots of a running server.", no_args_is_help=True)
tasks_app = typer.Typer(help="Run a task with a policy on robots of a running server.", no_args_is_help=True)

URL = typer.Option(None, "--url", envvar="WAM_API_URL", callback=api_url,
                   help="server address (default http://127.0.0.1:8000; the /v1 `wam serve` prints may be left on)")
KEY = typer.Option(None, "--key", envvar="WAM_API_KEY", help="API key")
DATA = typer.Option(None, help="the server's --data (locates the default SQLite database)", callback=directory_out)
DB = typer.Option(None, help="the server's --db URL", callback=db_url)


def _print(value) -> None:
    console.print_json(json.dumps(value))


def _client(url, key):
    from wam.api.client import Client

    return Client(url, key)


def _call(function, *args, **kwargs):
    from wam.api.client import ApiError

    try:
        return function(*args, **kwargs)
    except ApiError as error:
        fail(_readable(error))
    except Exception as error:  # noqa: BLE001 - connection refused and the like, said plainly
        fail(f"{type(error).__name__}: {error}")


def _readable(error) -> str:
    """An API error in one line: a 422's list of field errors as `field: message (got value)`."""
    try:
        items = json.loads(error.detail)
        fields = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']} (got {e.get('input')!r})" for e in items]
    except (TypeError, ValueError, KeyError):
        return str(error)
    return f"{str(error).split(': ', 1)[0]}: {'; '.join(fields)}"


def _store(data: Optional[Path], db: Optional[str], create: bool = False):
    """The server's store, named by --db or by --data's default SQLite file; only `create` makes a new database."""
    from sqlalchemy.exc import SQLAlchemyError

    from wam.api.server import default_db
    from wam.api.store import Store

    if db is None and data is None:
        fail("say which server's database: --data DIR (its default SQLite) or --db URL")
    url = db or default_db(data)
    named = f"--db {shown_db(url)}" if db else f"--data {data} (database {url})"
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") and ":memory:" not in url else None
    if path is not None and not create and not Path(path).is_file():
        fail(f"{named}: no database there yet (`wam keys create` or `wam serve` makes it)")
    try:
        return Store(url)
    except (SQLAlchemyError, ImportError) as error:
        fail(f"{named}: cannot open the database ({str(error).strip().splitlines()[0]})")


def serve(
    robots: str = typer.Option(..., help="fleet, e.g. metaworld/reach-v3*8,metaworld/drawer-open-v3*4"),
    data: Path = typer.Option(..., help="dataset every episode is recorded into (created if missing)", callback=directory_out),
    db: Optional[str] = typer.Option(None, help="SQLAlchemy URL (default: SQLite file beside --data); postgresql+psycopg://...",
                                     callback=db_url),
    runs: Optional[Path] = typer.Option(None, help="finetuned runs a task may name as its policy (default: 'runs' beside "
                                                  "--data); tasks name them relative to it", callback=directory_out),
    host: str = typer.Option("127.0.0.1", help="address to listen on (loopback unless --public)"),
    port: int = typer.Option(8000, callback=in_range(1, 65535)),
    obs: str = typer.Option("pixels", help="pixels (image + state) or state (no rendering)"),
    max_episode_steps: int = typer.Option(300, callback=at_least(1)),
    public: bool = typer.Option(False, help="allow listening beyond loopback"),
    ray: Optional[str] = typer.Option(None, "--ray", help="place the simulated robots' workers on this Ray cluster (auto, "
                                      "local or an address); keys, leases, estop and recording stay on this server"),
) -> None:
    """Serve a fleet of robots through the Physical API; every episode is recorded into --data."""
    from wam.api.server import ServerConfig, check_startup, serve as run_server

    try:
        config = ServerConfig(robots, data, db, obs, max_episode_steps=max_episode_steps, progress=True, runs=runs, ray=ray)
        check_startup(config, host, public)
        console.print(f"wam serve: http://{host}:{port}/v1 (OpenAPI at /openapi.json), the console at http://{host}:{port}/, "
                      f"recording into {data}")
        from wam.console.fleet import mount_console

        run_server(config, host, port, public, extend=mount_console)
    except ValueError as error:
        fail(str(error))


def mcp(url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    """An MCP tool server on stdio, so a language-model agent can drive the fleet through the API."""
    from wam.api.mcp_server import build_server

    build_server(url, key).run(transport="stdio")


def _scope(value: str) -> str:
    """Checked while the command line is parsed: a bad scope creates no database."""
    from wam.api.auth import SCOPES

    if value not in SCOPES:
        raise typer.BadParameter(f"{value!r} (must be one of {', '.join(SCOPES)})")
    return value


@keys_app.command("create")
def keys_create(
    scope: str = typer.Option(..., help="read | control | admin", callback=_scope),
    robots: str = typer.Option("*", help="robot-id pattern the key may use, e.g. 'reach-*'"),
    name: str = typer.Option("", help="a note on who holds it"),
    data: Optional[Path] = DATA,
    db: Optional[str] = DB,
) -> None:
    """Create a key and print it once; the database keeps only its hash. (The database's owner may create any key;
    through the API a key creates only keys within its own scope and robot pattern.)"""
    from wam.api.auth import create_key

    store = _store(data, db, create=True)
    try:
        info, secret = create_key(store, scope, robots, name)
    except ValueError as error:
        fail(str(error))
    finally:
        store.close()
    _print({"id": info.id, "scope": info.scope, "robots": info.robots, "key": secret})


@keys_app.command("list")
def keys_list(data: Optional[Path] = DATA, db: Optional[str] = DB) -> None:
    store = _store(data, db)
    try:
        _print([k.__dict__ for k in store.list_keys()])
    finally:
        store.close()


@keys_app.command("revoke")
def keys_revoke(key_id: str, data: Optional[Path] = DATA, db: Optional[str] = DB) -> None:
    """Revoke a key in the database; the last admin key (and the last one for every robot) is kept.

    A running server stops accepting the key within 5 s and closes its streams within 5 s; its leases are freed
    as soon as another key asks for the robot, or at once by an admin (`wam robots break-lease`). Revoking through
    the API (`DELETE /v1/keys/ID`) does all of this at once."""
    from wam.api.store import LastAdminKey

    store = _store(data, db)
    try:
        found = store.revoke_key(key_id)
    except LastAdminKey as error:
        fail(str(error))
    finally:
        store.close()
    if not found:
        fail(f"no key {key_id!r}")
    console.print(f"revoked {key_id} (servers forget cached keys within 5 s)")


@robots_app.command("list")
def robots_list(url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    _print(_call(_client(url, key).robots))


@robots_app.command("show")
def robots_show(robot_id: str, url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    client = _client(url, key)
    _print({"robot": _call(client.robot, robot_id), "observation": _call(client.observation, robot_id)})


@robots_app.command("watch")
def robots_watch(robot_id: str, count: Optional[int] = typer.Option(None, help="stop after this many observations",
                                                                  callback=at_least(1)),
                 url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    """Print observations as they stream (one JSON line each)."""
    for obs in _call(lambda: list(_client(url, key).watch(robot_id, count)) if count is not None else _client(url, key).watch(robot_id)):
        console.print(json.dumps(obs), highlight=False, soft_wrap=True)


@robots_app.command("reset")
def robots_reset(robot_id: str, task: Optional[str] = typer.Option(None),
                 seed: Optional[int] = typer.Option(None, callback=at_least(0)),
                 ttl: float = typer.Option(60.0, help="lease seconds (the CLI leases the robot for you)", callback=positive),
                 url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    client = _client(url, key)
    _call(client.lease, robot_id, ttl)
    _print(_call(client.reset, robot_id, task, seed))


@robots_app.command("step")
def robots_step(robot_id: str, action: str = typer.Argument(..., help="comma-separated values, e.g. 0,0.5,0,0"),
                repeat: int = typer.Option(1, help="send the action this many times as one chunk", callback=at_least(1)),
                ttl: float = typer.Option(60.0, callback=positive), url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    try:
        values = [float(v) for v in action.split(",")]
    except ValueError:
        fail(f"action {action!r} must be comma-separated numbers, e.g. 0,0.5,0,0")
    if not all(math.isfinite(v) for v in values):
        fail(f"action {action!r} must be finite numbers (no nan or inf)")
    client = _client(url, key)
    _call(client.lease, robot_id, ttl)
    _print(_call(client.step, robot_id, actions=[values] * repeat))


@robots_app.command("break-lease")
def robots_break_lease(robot_id: str, url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    """Break the lease a key holds on a robot (admin keys)."""
    _print(_call(_client(url, key).break_lease, robot_id))


@robots_app.command("estop")
def robots_estop(robot_id: Optional[str] = typer.Argument(None, help="a robot; omit with --all for the fleet"),
                 all_robots: bool = typer.Option(False, "--all", help="stop every robot the key can see"),
                 release: bool = typer.Option(False, help="release the stop instead"),
                 url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    client = _client(url, key)
    if all_robots and release:
        fail("--release frees one robot at a time (a stop is released by its presser or an admin): name the robot")
    if all_robots:
        _print(_call(client.estop_fleet))
    elif robot_id is None:
        fail("name a robot or pass --all")
    else:
        _print(_call(client.release_estop if release else client.estop, robot_id))


@tasks_app.command("run")
def tasks_run(task: str, policy: str = typer.Option("expert", help="expert, random, or a finetuned WAM run in the "
                                                                  "server's runs directory (its name there)"),
              robots: int = typer.Option(1, help="how many idle robots", callback=at_least(1)),
              episodes: int = typer.Option(1, callback=at_least(1)), seed: int = typer.Option(0, callback=at_least(0)),
              wait: bool = typer.Option(False, help="wait until it ends, showing progress; exit 1 unless it finished"),
              url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    client = _client(url, key)
    run = _call(client.run_task, task, policy, robots, episodes, seed)
    if wait:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=errors) as bar:
            job = bar.add_task(run["id"], total=run["episodes"])
            while run["status"] == "running":
                time.sleep(0.5)
                run = _call(client.task, run["id"])
                bar.update(job, completed=run["episodes_done"])
    _print(run)
    if wait and run["status"] != "finished":
        fail(f"task run {run['id']} {run['status']}" + (f": {run['error']}" if run.get("error") else ""), code=1)


@tasks_app.command("status")
def tasks_status(run_id: Optional[str] = typer.Argument(None, help="a run; omit to list recent runs"),
                 url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    client = _client(url, key)
    _print(_call(client.task, run_id) if run_id else _call(client.tasks))


@tasks_app.command("cancel")
def tasks_cancel(run_id: str, url: Optional[str] = URL, key: Optional[str] = KEY) -> None:
    _print(_call(_client(url, key).cancel_task, run_id))


def register(app: typer.Typer) -> None:
    from wam.bridge.cli import bridge

    app.command()(serve)
    app.command()(bridge)
    app.command()(mcp)
    app.add_typer(keys_app, name="keys")
    app.add_typer(robots_app, name="robots")
    app.add_typer(tasks_app, name="tasks")
