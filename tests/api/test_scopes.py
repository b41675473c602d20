"""Scopes and robot patterns hold on every route; revocation takes effect; tasks take only known policies.

A fleet of two reach robots and one drawer robot, and keys limited to `reach-*`: for each
leak of issue 27, the request that leaked now answers as if the rest of the fleet did not
exist (404, the same message a missing robot, run, episode or key gets).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.support.live_server import start_live

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

REACH, OTHER_REACH, DRAWER, MISSING = "reach-v3-0", "reach-v3-1", "drawer-open-v3-0", "no-such-robot-7"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The live server, keys limited to reach-* at every scope, and one episode and one finished run per robot family."""
    from wam.api.auth import create_key
    from wam.api.store import Store

    state, server, thread = start_live(tmp_path_factory.mktemp("scopes"), "metaworld/reach-v3*2,metaworld/drawer-open-v3",
                                       obs="state", max_episode_steps=5)
    store = Store(state.db)
    for scope in ("read", "control", "admin"):
        state.keys[f"reach_{scope}"] = create_key(store, scope, robots="reach-*")[1]
    store.close()
    state.episodes, state.runs = {}, {}
    with http(state, "control") as client:
        for robot in (REACH, DRAWER):
            lease = client.post(f"/v1/robots/{robot}/lease", json={"ttl_s": 60}).json()
            client.post(f"/v1/robots/{robot}/reset", json={"seed": 0})
            state.episodes[robot] = client.post(f"/v1/robots/{robot}/step", json={"actions": [[0, 0, 0, 0]] * 5}).json()["episode_id"]
            client.delete(f"/v1/leases/{lease['lease_id']}")
            task = "drawer-open-v3" if robot == DRAWER else "reach-v3"
            state.runs[robot] = run = client.post("/v1/tasks", json={"task": task, "robots": [robot]}).json()["id"]
            wait_for_run(client, run)
    yield state
    server.should_exit = True
    thread.join(60)


def http(live, key: str):
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys[key]}"}, timeout=60)


def wait_for_run(client, run_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    run = client.get(f"/v1/tasks/{run_id}").json()
    while run["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        run = client.get(f"/v1/tasks/{run_id}").json()
    return run


def same_404(first: httpx.Response, second: httpx.Response, first_name: str, second_name: str) -> None:
    """Both 404, with one message once the name asked for is taken out of it."""
    assert first.status_code == second.status_code == 404, (first.text, second.text)
    assert first.json()["detail"].replace(first_name, "?") == second.json()["detail"].replace(second_name, "?")


# -- keys ------------------------------------------------------------------------------------------
def test_a_scoped_admin_cannot_create_a_broader_key(fleet):
    with http(fleet, "reach_admin") as admin:
        for robots in ("*", "drawer-*", "reach-v3-*", "*-v3-0", DRAWER):
            response = admin.post("/v1/keys", json={"scope": "admin", "robots": robots})
            assert response.status_code == 403 and "reach-*" in response.json()["detail"], robots
        same = admin.post("/v1/keys", json={"scope": "admin", "robots": "reach-*"})
        one = admin.post("/v1/keys", json={"scope": "control", "robots": REACH})
        assert same.status_code == one.status_code == 201
    minted = {"Authorization": f"Bearer {same.json()['secret']}"}
    assert httpx.post(f"{fleet.url}/v1/robots/{DRAWER}/lease", json={"ttl_s": 5}, headers=minted).status_code == 404
    with http(fleet, "control") as control:
        assert control.post("/v1/keys", json={"scope": "read"}).status_code == 403  # and control keys create none


def test_a_scoped_admin_lists_and_revokes_only_keys_within_its_pattern(fleet):
    with http(fleet, "admin") as admin:
        everyone = {k["id"]: k["robots"] for k in admin.get("/v1/keys").json()}
        drawer_key = next(i for i, robots in everyone.items() if robots == "drawer-*")
        unlimited = next(i for i, robots in everyone.items() if robots == "*")
    with http(fleet, "reach_admin") as admin:
        listed = admin.get("/v1/keys").json()
        assert listed and all(k["robots"] == "reach-*" or k["robots"].startswith("reach-") and "*" not in k["robots"]
                              for k in listed)
        assert {drawer_key, unlimited}.isdisjoint(k["id"] for k in listed)
        for key_id in (drawer_key, unlimited):
            same_404(admin.delete(f"/v1/keys/{key_id}"), admin.delete("/v1/keys/000000000000"), key_id, "000000000000")
    with http(fleet, "admin") as admin:
        assert not any(k["revoked"] for k in admin.get("/v1/keys").json() if k["id"] in (drawer_key, unlimited))


def test_the_last_admin_key_cannot_be_revoked(fleet, tmp_path):
    from wam.api.auth import create_key
    from wam.api.store import LastAdminKey, Store

    with http(fleet, "admin") as admin:
        me = next(k["id"] for k in admin.get("/v1/keys").json() if k["scope"] == "admin" and k["robots"] == "*")
        refused = admin.delete(f"/v1/keys/{me}")  # the only admin key for every robot, even revoked by itself
        assert refused.status_code == 409 and "last admin key" in refused.json()["detail"]
        second = admin.post("/v1/keys", json={"scope": "admin", "name": "second"}).json()
    own = {"Authorization": f"Bearer {second['secret']}"}
    assert httpx.delete(f"{fleet.url}/v1/keys/{second['id']}", headers=own).status_code == 204  # another remains: allowed
    assert httpx.get(f"{fleet.url}/v1/keys", headers=own).status_code == 401
    with http(fleet, "admin") as admin:
        assert admin.get("/v1/keys").status_code == 200

    store = Store(f"sqlite:///{tmp_path / 'keys.db'}")  # only scoped admins: the last one of any pattern is kept
    reach, _ = create_key(store, "admin", robots="reach-*")
    drawer, _ = create_key(store, "admin", robots="drawer-*")
    assert store.revoke_key(drawer.id)
    with pytest.raises(LastAdminKey):
        store.revoke_key(reach.id)
    store.close()

    from typer.testing import CliRunner

    from wam.cli import app

    result = CliRunner().invoke(app, ["keys", "revoke", reach.id, "--db", f"sqlite:///{tmp_path / 'keys.db'}"])
    assert result.exit_code == 2 and "last admin key" in result.output


# -- robots ----------------------------------------------------------------------------------------
ROBOT_ROUTES = [  # (method, path, body, the reach-* key it is asked with)
    ("GET", "/v1/robots/{}", None, "reach_read"),
    ("GET", "/v1/robots/{}/observation", None, "reach_read"),
    ("GET", "/v1/robots/{}/observation.png", None, "reach_read"),
    ("POST", "/v1/robots/{}/lease", {"ttl_s": 5}, "reach_control"),
    ("DELETE", "/v1/robots/{}/lease", None, "reach_admin"),
    ("POST", "/v1/robots/{}/reset", {}, "reach_control"),
    ("POST", "/v1/robots/{}/step", {"action": [0, 0, 0, 0]}, "reach_control"),
    ("POST", "/v1/robots/{}/estop", None, "reach_control"),
    ("POST", "/v1/robots/{}/estop/release", None, "reach_control"),
]


@pytest.mark.parametrize("method, path, body, key", ROBOT_ROUTES)
def test_another_robot_answers_as_a_missing_one(fleet, method, path, body, key):
    with http(fleet, key) as client:
        other = client.request(method, path.format(DRAWER), json=body)
        missing = client.request(method, path.format(MISSING), json=body)
    same_404(other, missing, DRAWER, MISSING)
    assert "reach-v3" not in missing.json()["detail"]  # no robot ids listed: the fleet is not told
    assert not fleet.app.state.fleet.robots[DRAWER].estopped


def test_robot_lists_fleet_steps_and_tasks_stay_within_the_pattern(fleet):
    with http(fleet, "reach_control") as client:
        assert {r["id"] for r in client.get("/v1/robots").json()} == {REACH, OTHER_REACH}
        steps = {"steps": [{"robot": DRAWER, "action": [0, 0, 0, 0]}, {"robot": MISSING, "action": [0, 0, 0, 0]}]}
        other, missing = client.post("/v1/fleet/step", json=steps).json()
        assert other["status"] == missing["status"] == 404
        assert other["detail"].replace(DRAWER, "?") == missing["detail"].replace(MISSING, "?")
        for robots in ([DRAWER], [MISSING]):
            response = client.post("/v1/tasks", json={"task": "reach-v3", "robots": robots})
            assert response.status_code == 404 and "no robot" in response.json()["detail"]
        too_many = client.post("/v1/tasks", json={"task": "reach-v3", "robots": 3})
        assert too_many.status_code == 422 and "1..2" in too_many.json()["detail"]  # its own robots, not the fleet's
        stopped = client.post("/v1/fleet/estop").json()
        assert {r["id"] for r in stopped} == {REACH, OTHER_REACH} and not fleet.app.state.fleet.robots[DRAWER].estopped
        for robot in (REACH, OTHER_REACH):
            client.post(f"/v1/robots/{robot}/estop/release")


def test_a_stream_of_another_robot_is_refused_as_a_missing_one(fleet):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    refusals = []
    for robot in (DRAWER, MISSING, REACH):
        url = fleet.url.replace("http", "ws") + f"/v1/robots/{robot}/stream?key={fleet.keys['reach_read']}"
        if robot == REACH:
            with connect(url) as socket:
                assert json.loads(socket.recv(timeout=10))["robot"] == REACH
            continue
        with pytest.raises(InvalidStatus) as error:  # closed before the handshake: the same refusal, nothing in it
            with connect(url) as socket:
                socket.recv(timeout=10)
        refusals.append((error.value.response.status_code, bytes(error.value.response.body)))
    assert refusals[0] == refusals[1], refusals


# -- episodes and runs ----------------------------------------------------------------------------
def test_episodes_of_other_robots_are_hidden(fleet):
    drawer, reach = fleet.episodes[DRAWER], fleet.episodes[REACH]
    with http(fleet, "reach_read") as client:
        listed = client.get("/v1/episodes", params={"limit": 1000}).json()
        assert reach in [e["id"] for e in listed] and {e["robot"] for e in listed} <= {REACH, OTHER_REACH}
        assert client.get("/v1/episodes", params={"robot": DRAWER}).json() == []
        assert client.get("/v1/episodes", params={"run_id": fleet.runs[DRAWER]}).json() == []
        for path in ("/v1/episodes/{}", "/v1/episodes/{}/download"):
            same_404(client.get(path.format(drawer)), client.get(path.format(999_999)), str(drawer), "999999")
        assert client.get(f"/v1/episodes/{reach}/download").status_code == 200
    with http(fleet, "read") as client:
        assert client.get(f"/v1/episodes/{drawer}").json()["robot"] == DRAWER


def test_runs_of_other_robots_are_hidden_and_cancelled_only_by_their_key_or_an_admin(fleet):
    drawer_run = fleet.runs[DRAWER]
    with http(fleet, "control") as owner:
        mixed = owner.post("/v1/tasks", json={"task": "reach-v3", "policy": "random", "robots": [OTHER_REACH, DRAWER],
                                              "episodes": 100_000}).json()
    with http(fleet, "reach_admin") as client:
        listed = {r["id"] for r in client.get("/v1/tasks").json()}
        assert fleet.runs[REACH] in listed and not {drawer_run, mixed["id"]} & listed  # a run on any other robot is hidden
        for run in (drawer_run, mixed["id"]):
            same_404(client.get(f"/v1/tasks/{run}"), client.get("/v1/tasks/run-0000000000"), run, "run-0000000000")
            same_404(client.post(f"/v1/tasks/{run}/cancel"), client.post("/v1/tasks/run-0000000000/cancel"), run,
                     "run-0000000000")
    assert mixed["owner"] and mixed["owner"] in fleet.keys["control"]  # the run names the key that started it
    with http(fleet, "control_other") as other:  # a control key over every robot, but not the run's
        refused = other.post(f"/v1/tasks/{mixed['id']}/cancel")
        assert refused.status_code == 403 and "another key" in refused.json()["detail"]
    with http(fleet, "admin") as admin:
        assert admin.post(f"/v1/tasks/{mixed['id']}/cancel").status_code == 200
        assert wait_for_run(admin, mixed["id"])["status"] == "cancelled"


# -- revocation and leases -------------------------------------------------------------------------
def test_revoking_a_key_closes_its_streams_and_frees_its_leases(fleet):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with http(fleet, "reach_admin") as admin:
        doomed = admin.post("/v1/keys", json={"scope": "control", "robots": "reach-*", "name": "doomed"}).json()
    headers = {"Authorization": f"Bearer {doomed['secret']}"}
    assert httpx.post(f"{fleet.url}/v1/robots/{OTHER_REACH}/lease", json={"ttl_s": 3600}, headers=headers).status_code == 201
    url = fleet.url.replace("http", "ws") + f"/v1/robots/{OTHER_REACH}/stream"
    with connect(url, additional_headers=headers) as socket:
        socket.recv(timeout=10)  # the latest observation: the stream is open
        with http(fleet, "reach_admin") as admin:
            assert admin.delete(f"/v1/keys/{doomed['id']}").status_code == 204
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=10)
        assert closed.value.rcvd.code == 4401 and time.monotonic() - started < 3
    assert not fleet.app.state.fleet.robots[OTHER_REACH].lease
    with http(fleet, "reach_control") as client:
        lease = client.post(f"/v1/robots/{OTHER_REACH}/lease", json={"ttl_s": 60})
        assert lease.status_code == 201
        client.delete(f"/v1/leases/{lease.json()['lease_id']}")


def test_an_admin_breaks_any_lease_on_its_robots(fleet):
    from wam.api.client import ApiError, Client

    with http(fleet, "control") as holder:
        holder.post(f"/v1/robots/{REACH}/lease", json={"ttl_s": 3600})
        holder.post(f"/v1/robots/{DRAWER}/lease", json={"ttl_s": 3600})
    with http(fleet, "reach_control") as other:
        assert other.post(f"/v1/robots/{REACH}/lease", json={"ttl_s": 5}).status_code == 409
    with Client(fleet.url, fleet.keys["reach_admin"]) as admin:
        assert not admin.break_lease(REACH)["leased"]
        with pytest.raises(ApiError) as error:
            admin.break_lease(DRAWER)
        assert error.value.status == 404
    with Client(fleet.url, fleet.keys["reach_control"]) as control:
        with pytest.raises(ApiError) as error:
            control.break_lease(REACH)
        assert error.value.status == 403
        control.release(control.lease(REACH, 5)["lease_id"])
    from typer.testing import CliRunner

    from wam.cli import app

    broken = CliRunner().invoke(app, ["robots", "break-lease", DRAWER, "--url", fleet.url, "--key", fleet.keys["admin"]])
    assert broken.exit_code == 0 and not json.loads(broken.stdout)["leased"]
    with http(fleet, "control") as owner:
        run = owner.post("/v1/tasks", json={"task": "reach-v3", "policy": "random", "robots": [REACH], "episodes": 100_000}).json()
        with http(fleet, "admin") as admin:
            refused = admin.delete(f"/v1/robots/{REACH}/lease")
            assert refused.status_code == 409 and run["id"] in refused.json()["detail"]
        owner.post(f"/v1/tasks/{run['id']}/cancel")
        wait_for_run(owner, run["id"])


# -- task policies ---------------------------------------------------------------------------------
def test_a_task_policy_must_be_a_builtin_or_a_run_in_the_runs_directory(fleet):
    runs = fleet.data.parent / "runs"
    (runs / "not-a-run").mkdir(parents=True, exist_ok=True)
    (runs / "broken").mkdir(exist_ok=True)
    (runs / "broken" / "finetune.json").write_text("{}")  # a run directory whose record cannot load
    with http(fleet, "control") as client:
        refused = []
        for policy in ("/etc", "../../", "../data", "/etc/definitely-missing", "not-a-run", "missing-run", str(runs)):
            response = client.post("/v1/tasks", json={"task": "reach-v3", "policy": policy, "robots": [REACH]})
            assert response.status_code == 422, (policy, response.text)
            refused.append(response.json()["detail"])
        assert len(set(refused)) == 1 and "/" not in refused[0]  # one message, naming no path
        run = client.post("/v1/tasks", json={"task": "reach-v3", "policy": "broken", "robots": [REACH]})
        assert run.status_code == 201 and run.json()["policy"] == "broken"
        failed = wait_for_run(client, run.json()["id"])
    assert failed["status"] == "failed" and failed["error"].startswith(REACH)
    for leak in ("/", "Traceback", "File ", "finetune.json", "Error"):
        assert leak not in failed["error"], failed["error"]
    with http(fleet, "reach_read") as reader:
        assert reader.get(f"/v1/tasks/{failed['id']}").json()["error"] == failed["error"]
