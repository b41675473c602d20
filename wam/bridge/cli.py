"""`wam bridge`: run the bridge for one robot, next to it.

    wam bridge --url http://SERVER:8000 --key KEY --robot so100-0 --factory my_arm:make_robot \
        --action-low -100,-100,-100,-100,-100,0 --action-high 100,100,100,100,100,100 --fps 30

`--factory module:function` returns the robot: a LeRobot `Robot` (configured; bounds from the
options) or any object with the `BridgeRobot` calls. `--sim metaworld/reach-v3` puts a
simulated arm behind the bridge instead, to try the whole path without hardware.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
from typing import Optional

import typer


def _fail(message: str) -> None:
    """A refusal on one line, as every `wam` command gives one (exit status 2)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _floats(text: Optional[str], option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        _fail(f"{option} must be comma-separated numbers, got {text!r}")


def _factory(spec: str):
    module, sep, function = spec.partition(":")
    if not sep or not module or not function:
        _fail(f"--factory must look like module:function, got {spec!r}")
    sys.path.insert(0, ".")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as error:
        _fail(f"--factory {spec!r}: {error}")


def bridge(
    url: str = typer.Option(..., envvar="WAM_API_URL", help="the server, e.g. http://192.168.1.10:8000"),
    key: str = typer.Option(..., envvar="WAM_API_KEY", help="a control key whose robot pattern covers --robot"),
    robot: str = typer.Option(..., help="the robot's id on the server (so100-0 for `wam serve --robots remote/so100`)"),
    factory: Optional[str] = typer.Option(None, help="module:function returning the robot (a LeRobot Robot or a BridgeRobot)"),
    sim: Optional[str] = typer.Option(None, help="a simulated robot instead, e.g. metaworld/reach-v3"),
    size: int = typer.Option(64, help="--sim: camera size in pixels"),
    cameras: str = typer.Option("corner2", help="--sim: the simulator's cameras, comma-separated"),
    action_low: Optional[str] = typer.Option(None, help="a LeRobot robot's action bounds, comma-separated"),
    action_high: Optional[str] = typer.Option(None),
    max_delta: Optional[str] = typer.Option(None, help="the most one action may move each joint from the previous one"),
    safe_action: Optional[str] = typer.Option(None, help="the action that holds the robot safe (default: its present pose)"),
    fps: float = typer.Option(30.0, help="a LeRobot robot's control rate; actions are paced to it"),
    watchdog_s: float = typer.Option(1.0, help="hold position when the server is silent this long"),
) -> None:
    """Connect a robot to a `wam serve` fleet: it is driven through the API like any robot, and every episode is
    recorded on the server. Holds position when the server goes silent; reconnects until stopped (Ctrl-C)."""
    from wam.bridge.bridge import Bridge, BridgeConfig, BridgeRefused
    from wam.bridge.lerobot import LeRobotRobot
    from wam.bridge.robot import SimulatedRobot

    if (factory is None) == (sim is None):
        _fail("give one of --factory module:function or --sim <env id>")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    try:
        config = BridgeConfig(url, key, robot, watchdog_s=watchdog_s)
        if sim is not None:
            driver = SimulatedRobot(sim, size=size, cameras=tuple(c for c in cameras.split(",") if c))
        else:
            made = _factory(factory)()
            if hasattr(made, "declare"):
                driver = made
            else:
                low, high = _floats(action_low, "--action-low"), _floats(action_high, "--action-high")
                if low is None or high is None:
                    _fail("a LeRobot robot needs --action-low and --action-high (its joints' bounds)")
                driver = LeRobotRobot(made, low, high, fps, _floats(max_delta, "--max-delta"), _floats(safe_action, "--safe-action"))
        link = Bridge(driver, config)
    except ValueError as error:
        _fail(str(error))
    signal.signal(signal.SIGTERM, lambda *_: link.stop.set())
    try:
        link.run()
    except KeyboardInterrupt:
        pass
    except BridgeRefused as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    finally:
        driver.close()
