"""The console's rules over plain HTTP: sign-in, the cookie, scope and robot pattern, CSRF, revoked keys."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.live_server import start_live
from wam.console.fleet import mount_console

pytestmark = pytest.mark.slow  # a live server with a fleet of simulated robots


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    state, server, thread = start_live(tmp_path_factory.mktemp("console"), "metaworld/reach-v3*2,metaworld/drawer-open-v3",
                                       extend=mount_console)
    with httpx.Client(base_url=state.url, headers={"Authorization": f"Bearer {state.keys['control']}"}) as api:
        for robot in ("reach-v3-0", "reach-v3-1", "drawer-open-v3-0"):
            lease = api.post(f"/v1/robots/{robot}/lease", json={"ttl_s": 60}).json()["lease_id"]
            api.post(f"/v1/robots/{robot}/reset", json={"seed": 1}).raise_for_status()
            api.delete(f"/v1/leases/{lease}").raise_for_status()
    yield state
    server.should_exit = True
    thread.join(60)


def browser(live, key: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=live.url, follow_redirects=True)
    if key is not None:
        answer = client.post("/console/signin", data={"key": live.keys[key]})
        assert answer.status_code == 200, answer.text
    return client


def csrf(page: str) -> str:
    return re.search(r'name="csrf-token" content="([0-9a-f]+)"', page).group(1)


def test_signing_in_sets_a_strict_httponly_cookie_and_shows_the_fleet(live):
    client = httpx.Client(base_url=live.url)
    assert client.get("/").headers["location"] == "/console/fleet"
    assert "Sign in" in client.get("/console/fleet").text  # no cookie: the sign-in page
    answer = client.post("/console/signin", data={"key": live.keys["control"]})
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and live.keys["control"].lower() not in answer.headers["location"]
    page = client.get("/console/fleet").text
    assert page.count('class="robot"') == 3 and 'class="estop"' in page
    assert "cdn" not in page.lower() and "http://" not in page.replace(live.url, "")  # every asset from this server
    assert client.get("/console/robots/reach-v3-0/frame.png").headers["content-type"] == "image/png"
    assert client.get("/console/static/console.js").status_code == 200


def test_a_bad_key_lands_on_the_sign_in_page_with_one_line(live):
    answer = browser(live).post("/console/signin", data={"key": "wam_nope_nothing"})
    assert answer.status_code == 401 and answer.text.count('class="error"') == 1 and "unknown or has been revoked" in answer.text


def test_a_read_key_sees_no_buttons_and_cannot_stop(live):
    client = browser(live, "read")
    page = client.get("/console/fleet").text
    assert 'class="robot"' in page and "<button" not in page
    refused = client.post("/console/robots/reach-v3-0/estop", headers={"X-CSRF-Token": csrf(page)})
    assert refused.status_code == 403 and "needs 'control'" in refused.text


def test_a_forged_estop_without_the_csrf_token_is_refused(live):
    client = browser(live, "control")
    for headers in ({}, {"X-CSRF-Token": "0" * 64}):
        refused = client.post("/console/robots/reach-v3-1/estop", headers=headers)
        assert refused.status_code == 403 and "CSRF" in refused.text
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys['read']}"}) as api:
        assert not api.get("/v1/robots/reach-v3-1").json()["estopped"]


def test_the_robot_pattern_holds_in_the_console(live):
    client = browser(live, "control_drawer")
    page = client.get("/console/fleet").text
    assert page.count('class="robot"') == 1 and "drawer-open-v3-0" in page and "reach-v3-0" not in page
    assert client.get("/console/robots/reach-v3-0/frame.png").status_code == 404
    assert client.post("/console/robots/reach-v3-0/estop", headers={"X-CSRF-Token": csrf(page)}).status_code == 404
    assert [r["id"] for r in client.get("/console/fleet.json").json()] == ["drawer-open-v3-0"]


def test_a_revoked_key_is_sent_back_to_sign_in(live, tmp_path):
    from wam.api.auth import create_key
    from wam.api.store import Store

    store = Store(live.db)
    info, secret = create_key(store, "read", name="soon-revoked")
    store.close()
    client = httpx.Client(base_url=live.url, follow_redirects=True)
    assert client.post("/console/signin", data={"key": secret}).status_code == 200
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys['admin']}"}) as api:
        api.delete(f"/v1/keys/{info.id}").raise_for_status()
    page = client.get("/console/fleet")
    assert page.status_code == 401 and "revoked" in page.text and 'name="key"' in page.text


def test_recorded_episodes_are_browsed_within_the_key_s_robot_pattern(live):
    import time

    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys['control']}"}, timeout=60) as api:
        for robot in ("reach-v3-0", "drawer-open-v3-0"):
            lease = api.post(f"/v1/robots/{robot}/lease", json={"ttl_s": 60}).json()["lease_id"]
            api.post(f"/v1/robots/{robot}/reset", json={"seed": 2}).raise_for_status()
            api.post(f"/v1/robots/{robot}/step", json={"lease_id": lease, "actions": [[0.3, 0, 0, 0]] * 6}).raise_for_status()
            api.post(f"/v1/robots/{robot}/reset", json={"seed": 3}).raise_for_status()  # ends and records the episode
            api.delete(f"/v1/leases/{lease}")
        deadline = time.monotonic() + 30
        while len(api.get("/v1/episodes").json()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        episodes = {e["robot"]: e["id"] for e in api.get("/v1/episodes").json()}
    everyone, drawer_only = browser(live, "control"), browser(live, "control_drawer")
    assert everyone.get("/console/episodes").text.count("/console/episodes/") >= 2
    listed = drawer_only.get("/console/episodes").text
    assert "drawer-open-v3-0" in listed and "reach-v3-0" not in listed
    reach = episodes["reach-v3-0"]
    assert drawer_only.get(f"/console/episodes/{reach}").status_code == 404
    page = everyone.get(f"/console/episodes/{reach}")
    assert page.status_code == 200 and "video" in page.text
    video = everyone.get(f"/console/episodes/{reach}/video/observation.images.main.mp4")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4" and video.content[4:8] == b"ftyp"
    series = everyone.get(f"/console/episodes/{reach}/data.json").json()["series"]
    assert len(series["action"]["values"]) == 7 and series["observation.state"]["names"]


def test_task_runs_show_their_progress_and_their_episodes(live):
    import time

    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys['control']}"}, timeout=60) as api:
        run = api.post("/v1/tasks", json={"task": "reach-v3", "policy": "expert", "robots": ["reach-v3-0"], "episodes": 2,
                                          "seed": 4}).json()
        deadline = time.monotonic() + 120
        while api.get(f"/v1/tasks/{run['id']}").json()["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
    client = browser(live, "control")
    page = client.get("/console/tasks").text
    assert run["id"] in page and "2/2" in page
    listed = client.get("/console/episodes", params={"run": run["id"]}).text
    assert listed.count('href="/console/episodes/') == 2


def test_a_stop_is_released_by_the_key_that_pressed_it_not_by_another(live):
    presser, other = browser(live, "control"), browser(live, "control_other")
    token = csrf(presser.get("/console/fleet").text)
    assert presser.post("/console/robots/drawer-open-v3-0/estop", headers={"X-CSRF-Token": token}).json()["estopped"]
    page = presser.get("/console/fleet").text
    assert 'class="release" data-robot="drawer-open-v3-0">' in page  # shown for a stopped robot
    refused = other.post("/console/robots/drawer-open-v3-0/estop/release",
                         headers={"X-CSRF-Token": csrf(other.get("/console/fleet").text)})
    assert refused.status_code == 403 and "another key" in refused.text
    released = presser.post("/console/robots/drawer-open-v3-0/estop/release", headers={"X-CSRF-Token": token})
    assert released.status_code == 200 and not released.json()["estopped"]
    assert presser.post("/console/robots/drawer-open-v3-0/estop/release").status_code == 403  # no CSRF token
