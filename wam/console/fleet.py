"""The console's sign-in and fleet pages, mounted on a `wam serve` app by `mount_console`.

Server-rendered HTML with one small script (static/console.js): the fleet page polls `fleet.json` for each robot's
state and reloads each camera's `frame.png` a few times a second; emergency stops are POSTs with the CSRF header,
after a confirmation that names what they stop. Every asset is served from the package: nothing comes from outside.
"""

from __future__ import annotations

import html
import time

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from wam.api import convert
from wam.api.auth import check_robot
from wam.console.layout import STATIC, html_errors, page
from wam.console.session import (COOKIE, SignInNeeded, check_csrf, csrf_token, may_control, signed_in, visible)

router = APIRouter(prefix="/console", include_in_schema=False)


def sign_in_page(message: str = "", status: int = 200) -> HTMLResponse:
    line = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    response = page("Sign in", f"""{line}<form method="post" action="/console/signin" class="signin">
<label>API key <input type="password" name="key" autocomplete="off" required></label>
<button type="submit">Sign in</button></form>
<p class="hint">A key from <code>wam keys create</code>. It is kept in an HttpOnly cookie for this site only.</p>""")
    response.status_code = status
    return response


@router.get("/signin")
def sign_in_form(request: Request):
    return sign_in_page()


@router.post("/signin")
def sign_in(request: Request, key: str = Form("")):
    try:
        request.app.state.auth.verify(key.strip())
    except HTTPException:
        return sign_in_page("that key is unknown or has been revoked: sign in with a valid key", status=401)
    response = RedirectResponse("/console/fleet", status_code=303)
    response.set_cookie(COOKIE, key.strip(), httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.get("/signout")
def sign_out():
    response = RedirectResponse("/console/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _robot_state(handle) -> dict:
    robot = convert.robot(handle).model_dump()
    lease = handle.lease if handle.lease is not None and not handle.lease.expired else None
    robot["lease_holder"] = lease.holder if lease else None
    robot["lease_left_s"] = round(lease.expires_at - time.time(), 1) if lease else None
    return robot


def _lease(robot: dict) -> str:
    if not robot["lease_holder"]:
        return "free"
    return f'{robot["lease_holder"]} ({robot["lease_left_s"]:.0f} s left)'


def _card(robot: dict, control: bool) -> str:
    rid = html.escape(robot["id"])
    hidden = "" if robot["estopped"] else " hidden"
    button = (f'<button class="estop" data-robot="{rid}" data-env="{html.escape(robot["env"])}">emergency stop</button>'
              f'<button class="release" data-robot="{rid}"{hidden}>release stop</button>' if control else "")
    return f"""<article class="robot" data-robot="{rid}"><img class="frame" alt="camera of {rid}" data-robot="{rid}"
src="/console/robots/{rid}/frame.png"><div class="facts"><h2>{rid}</h2><p class="env">{html.escape(robot["env"])}</p>
<p>status <b class="status">{html.escape(robot["status"])}</b> · task <span class="task">{html.escape(str(robot["task"] or "-"))}</span></p>
<p>lease <span class="lease">{html.escape(_lease(robot))}</span> · stop
<span class="estopped">{"STOPPED" if robot["estopped"] else "no"}</span> · steps <span class="steps">{robot["steps"]}</span></p>
{button}</div></article>"""


@router.get("/fleet")
def fleet_page(request: Request):
    key, secret = signed_in(request)
    fleet = request.app.state.fleet
    robots = [_robot_state(fleet.robots[r]) for r in visible(key, fleet.robots)]
    control = may_control(key)
    fleet_button = ('<button class="estop-fleet">emergency stop: every robot shown</button>' if control else "")
    cards = "".join(_card(r, control) for r in robots) or "<p>This key sees no robots.</p>"
    body = f"""<p class="summary">{len(robots)} robots · key <code>{html.escape(key.id)}</code> ({html.escape(key.scope)},
robots <code>{html.escape(key.robots)}</code>)</p>{fleet_button}<section class="fleet">{cards}</section>"""
    return page("Fleet", body, csrf_token(request, secret), f"{key.name or key.id} ({key.scope})")


def _run_row(run) -> str:
    rate = f"{run.successes / run.episodes_done:.2f}" if run.episodes_done else "-"
    cells = (f"<code>{html.escape(run.id)}</code>", html.escape(run.task), html.escape(run.policy), html.escape(run.robots),
             f"{run.episodes_done}/{run.episodes}", str(run.successes), rate, html.escape(run.status),
             f'<a href="/console/episodes?run={html.escape(run.id)}">episodes</a>')
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


@router.get("/tasks")
def tasks_page(request: Request):
    """Task runs (a policy on N robots for M episodes) this key may see, with their progress and success so far."""
    from wam.api.auth import can_see_run

    key, secret = signed_in(request)
    runs = request.app.state.store.list_runs(200, visible=None if key.robots == "*" else lambda run: can_see_run(key, run))
    head = "".join(f"<th>{h}</th>" for h in ("run", "task", "policy", "robots", "episodes", "successes", "success so far",
                                             "status", ""))
    table = f"<table><tr>{head}</tr>{''.join(_run_row(r) for r in runs)}</table>" if runs else "<p>No task runs yet.</p>"
    return page("Tasks", table, csrf_token(request, secret), f"{key.name or key.id} ({key.scope})")


@router.get("/fleet.json")
def fleet_state(request: Request):
    key, _ = signed_in(request)
    fleet = request.app.state.fleet
    return JSONResponse([_robot_state(fleet.robots[r]) for r in visible(key, fleet.robots)])


@router.get("/robots/{robot_id}/frame.png")
def robot_frame(robot_id: str, request: Request):
    key, _ = signed_in(request)
    fleet = request.app.state.fleet
    check_robot(key, robot_id, fleet.robots)
    latest = fleet.get(robot_id).latest
    if latest is None or latest.get("image") is None:
        return Response(status_code=204)
    return Response(convert.png(latest["image"]), media_type="image/png", headers={"Cache-Control": "no-store"})


def controller(request: Request, what: str, robot_id: str | None = None):
    """The signed-in key of a request that changes something: its CSRF token checked, its scope at least control,
    the robot (if any) within its pattern. Returns (key, fleet)."""
    key, secret = signed_in(request)
    check_csrf(request, secret)
    if not may_control(key):
        raise HTTPException(403, f"this key has scope {key.scope!r}; {what} needs 'control'")
    fleet = request.app.state.fleet
    if robot_id is not None:
        check_robot(key, robot_id, fleet.robots)
    return key, fleet


@router.post("/robots/{robot_id}/estop")
async def estop_robot(robot_id: str, request: Request):
    key, fleet = controller(request, "an emergency stop", robot_id)
    await fleet.estop(robot_id, key.id)
    return JSONResponse(_robot_state(fleet.get(robot_id)))


@router.post("/robots/{robot_id}/estop/release")
async def release_estop(robot_id: str, request: Request):
    """As the API: a key releases its own stop; an admin releases every stop on the robot."""
    key, fleet = controller(request, "releasing a stop", robot_id)
    fleet.release_estop(robot_id, None if key.scope == "admin" else key.id)
    return JSONResponse(_robot_state(fleet.get(robot_id)))


@router.post("/fleet/estop")
async def estop_fleet(request: Request):
    key, fleet = controller(request, "an emergency stop")
    robots = visible(key, fleet.robots)
    await fleet.estop_fleet(robots, key.id)
    return JSONResponse([_robot_state(fleet.get(r)) for r in robots])


def mount_console(app: FastAPI) -> FastAPI:
    """Serve the console at / on a Physical API app (wam serve does this)."""
    from wam.console.data_pages import router as data_router

    app.include_router(router)
    app.include_router(data_router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    html_errors(app)

    @app.exception_handler(SignInNeeded)
    async def to_sign_in(request: Request, error: SignInNeeded):
        if request.url.path.endswith((".json", ".png")) or request.method != "GET":
            return JSONResponse({"detail": error.message or "sign in first"}, status_code=401)
        return sign_in_page(error.message, status=401 if error.message else 200)

    @app.get("/", include_in_schema=False)
    @app.get("/console/", include_in_schema=False)
    def root():
        return RedirectResponse("/console/fleet", status_code=307)

    return app
