"""The emergency stop preempts (issue 27): queued chunks and running tasks are cut, nothing runs after the answer,
the episode ends at the stop, and only the key that pressed it (or an admin) releases it.

Rendering robots (~6 ms an action here) make four 64-action chunks last over a second, so
the stop always lands mid-queue. Actions are counted by the worker itself, in the memory it
shares with the server (`RobotHandle.actions_executed`), not by what the server was told.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from tests.support.live_server import start_live

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

ROBOTS = ["reach-v3-0", "reach-v3-1", "reach-v3-2"]
CHUNKS, CHUNK = 4, 64


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    state, server, thread = start_live(tmp_path_factory.mktemp("estop"), "metaworld/reach-v3*3", max_episode_steps=500)
    yield state
    server.should_exit = True
    thread.join(60)


def http(live, key: str):
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys[key]}"}, timeout=60)


def handle(live, robot: str):
    return live.app.state.fleet.robots[robot]


def wait(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def sent_actions() -> np.ndarray:
    """Four chunks of distinct actions: action k of the 256 is (k, -k, k/2, 0) / 256."""
    k = np.arange(CHUNKS * CHUNK, dtype=np.float32)[:, None] / (CHUNKS * CHUNK)
    return np.concatenate([k, -k, k / 2, 0 * k], axis=1)  # (256, 4)


def queue_chunks(live, pool: ThreadPoolExecutor, robots: list[str], key: str = "control") -> tuple[dict, dict]:
    """Lease and reset each robot, then send its four chunks at once from four clients; returns when every robot has
    all four queued and is executing them: ({robot: [chunk answers (futures)]}, {robot: actions executed before})."""
    actions = sent_actions()
    with http(live, key) as client:
        leases = {r: client.post(f"/v1/robots/{r}/lease", json={"ttl_s": 120}).json()["lease_id"] for r in robots}
        for r in robots:
            assert client.post(f"/v1/robots/{r}/reset", json={"seed": 1}).status_code == 200
    before = {r: handle(live, r).actions_executed for r in robots}

    def send(robot: str, c: int) -> httpx.Response:
        with http(live, key) as client:
            body = {"lease_id": leases[robot], "actions": actions[c * CHUNK:(c + 1) * CHUNK].tolist()}
            return client.post(f"/v1/robots/{robot}/step", json=body)

    answers = {r: [pool.submit(send, r, c) for c in range(CHUNKS)] for r in robots}
    for r in robots:
        wait(lambda: handle(live, r).queued == CHUNKS and handle(live, r).actions_executed > before[r],
             what=f"four chunks queued on {r}")
    return answers, before


def ran_per_answers(answers: list[httpx.Response]) -> int:
    """The actions the chunk answers say ran: whole chunks (200), the part of the one cut (409 'after k of')."""
    ran = 0
    for answer in answers:
        if answer.status_code == 200:
            ran += answer.json()["steps"]
        else:
            assert answer.status_code == 409 and "emergency-stopped" in answer.json()["detail"], answer.text
            cut = re.search(r"after (\d+) of", answer.json()["detail"])
            ran += int(cut.group(1)) if cut else 0
    return ran


def check_stopped(live, robot: str, at_answer: int, before: int, answers: list) -> None:
    """Nothing ran after the answer; the chunk answers agree; the episode ended at the stop, with exactly those actions."""
    answers = [a.result(timeout=60) for a in answers]
    time.sleep(0.5)
    executed = handle(live, robot).actions_executed - before
    assert executed == at_answer, f"{executed - at_answer} action(s) ran on {robot} after the stop was answered"
    assert 0 < executed < CHUNKS * CHUNK  # the stop landed mid-queue and cut the rest
    assert any(a.status_code == 409 for a in answers)
    assert ran_per_answers(answers) == executed
    with http(live, "read") as client:
        episode = client.get("/v1/episodes", params={"robot": robot}).json()[-1]
    assert episode["end_reason"] == "estop" and episode["length"] == executed + 1  # the reset's frame, then one per action
    from wam.data.reader import Dataset

    recorded = Dataset(live.data).low_dim(episode["id"])["action"][:-1]  # the last frame repeats the last action
    sent = {tuple(row) for row in sent_actions()}
    assert len(recorded) == executed and len({tuple(row) for row in recorded}) == executed
    assert all(tuple(row) in sent for row in recorded)


def test_estop_cuts_four_queued_chunks(fleet):
    robot = ROBOTS[0]
    with ThreadPoolExecutor(CHUNKS) as pool:
        answers, before = queue_chunks(fleet, pool, [robot])
        with http(fleet, "control_other") as other:  # any control key may stop it, lease or not
            stopped = other.post(f"/v1/robots/{robot}/estop")
            at_answer = handle(fleet, robot).actions_executed - before[robot]
            assert stopped.status_code == 200 and stopped.json()["estopped"]
            check_stopped(fleet, robot, at_answer, before[robot], answers[robot])
            with http(fleet, "control") as client:
                step = client.post(f"/v1/robots/{robot}/step", json={"action": [0, 0, 0, 0]})
                assert step.status_code == 409 and "emergency-stopped" in step.json()["detail"]
            assert other.post(f"/v1/robots/{robot}/estop/release").status_code == 200
    assert handle(fleet, robot).actions_executed - before[robot] == at_answer


def test_estop_cuts_a_running_task(fleet):
    robot = ROBOTS[1]
    with http(fleet, "control") as client:
        run = client.post("/v1/tasks", json={"task": "reach-v3", "policy": "random", "robots": [robot],
                                             "episodes": 1000}).json()
        before = handle(fleet, robot).actions_executed
        wait(lambda: handle(fleet, robot).actions_executed > before + 5, what="the task to run")
        assert client.post(f"/v1/robots/{robot}/estop").json()["estopped"]
        at_answer = handle(fleet, robot).actions_executed
        time.sleep(0.5)
        assert handle(fleet, robot).actions_executed == at_answer
        wait(lambda: client.get(f"/v1/tasks/{run['id']}").json()["status"] != "running", what="the run to end")
        status = client.get(f"/v1/tasks/{run['id']}").json()
        assert status["status"] == "cancelled" and f"{robot}: emergency-stopped" in status["error"]
        last = client.get("/v1/episodes", params={"run_id": run["id"]}).json()[-1]
        assert last["end_reason"] == "estop" and last["robot"] == robot
        assert client.post("/v1/tasks", json={"task": "reach-v3", "robots": [robot]}).status_code == 409
        assert client.post(f"/v1/robots/{robot}/estop/release").status_code == 200
    assert handle(fleet, robot).actions_executed == at_answer


def test_only_the_presser_or_an_admin_releases(fleet):
    robot = ROBOTS[2]
    path = f"/v1/robots/{robot}/estop"
    with http(fleet, "control") as mine, http(fleet, "control_other") as other, http(fleet, "admin") as admin, \
            http(fleet, "control_drawer") as drawer, http(fleet, "read") as reader:
        assert other.post(path).status_code == 200
        refused = mine.post(path + "/release")
        assert refused.status_code == 403 and "another key" in refused.json()["detail"]
        assert drawer.post(path + "/release").status_code == 404  # a robot outside the key's pattern does not exist
        assert reader.post(path + "/release").status_code == 403  # scope
        assert handle(fleet, robot).estopped
        assert not other.post(path + "/release").json()["estopped"]
        assert mine.post(path).status_code == 200
        assert not admin.post(path + "/release").json()["estopped"]  # an admin releases any stop
        assert mine.post(path).status_code == 200 and other.post(path).status_code == 200  # two keys' stops
        assert mine.post(path + "/release").json()["estopped"]  # the other key's stop still holds
        assert not other.post(path + "/release").json()["estopped"]
        assert mine.post(path + "/release").json()["estopped"] is False  # releasing a robot that moves: a no-op


def test_fleet_estop_cuts_every_robot_the_key_sees(fleet):
    robots = ROBOTS[:2]
    with ThreadPoolExecutor(CHUNKS * len(robots)) as pool:
        answers, before = queue_chunks(fleet, pool, robots)
        with http(fleet, "control_other") as other, http(fleet, "control") as mine:
            stopped = other.post("/v1/fleet/estop").json()
            at_answer = {r: handle(fleet, r).actions_executed - before[r] for r in robots}
            assert {r["id"] for r in stopped} == set(ROBOTS) and all(r["estopped"] for r in stopped)
            for r in robots:
                check_stopped(fleet, r, at_answer[r], before[r], answers[r])
            for r in ROBOTS:
                assert mine.post(f"/v1/robots/{r}/estop/release").status_code == 403
                assert not other.post(f"/v1/robots/{r}/estop/release").json()["estopped"]
