"""Bad input and slow or greedy clients against a live server: each is refused with its own 4xx, never a 500.

The server here is started the way `wam serve` starts it (`wam.api.limits.uvicorn_config`: the head
guard in the HTTP protocol), with short head and body timeouts so the slow-client tests take seconds.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

ROBOT = "reach-v3-0"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from wam.api.auth import create_key
    from wam.api.server import BackgroundServer, ServerConfig
    from wam.api.store import Store

    config = ServerConfig(f"metaworld/{ROBOT[:-2]}", tmp_path_factory.mktemp("strict") / "data", obs="state",
                          max_episode_steps=20, head_timeout_s=1.0, body_timeout_s=2.0)
    store = Store(config.db_url)
    keys = {name: create_key(store, "control")[1] for name in ("control", "other")}
    store.close()
    with BackgroundServer(config) as background:
        port = int(background.url.rsplit(":", 1)[1])
        yield SimpleNamespace(url=background.url, port=port, keys=keys, app=background.app)


def client(server, key: str = "control") -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.keys[key]}"}, timeout=60)


def raw(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# -- values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["true", "false", '"0.1"', "null", "[0]", '{"x": 1}'])
def test_actions_are_numbers_only(server, value):
    with client(server) as http:
        response = http.post(f"/v1/robots/{ROBOT}/step", content=f'{{"action": [{value}, 0, 0, 0]}}', headers=JSON)
        assert response.status_code == 422, response.text
        error = response.json()["detail"][0]
        assert error["loc"] == ["body", "action", 0] and error["input"] == json.loads(value)  # names the value
        if value not in ("null", "[0]"):  # null is no action (a chunk instead); [0] is an action, of the wrong size
            whole = http.post(f"/v1/robots/{ROBOT}/step", content=f'{{"action": {value}}}', headers=JSON)
            assert whole.status_code == 422, whole.text


@pytest.mark.parametrize("body", [b'{"ttl_s": NaN}', b'{"ttl_s": Infinity}', b'{"ttl_s": -Infinity}', b'{"ttl_s": 1e999}',
                                  b'{"ttl_s": 1e308}', b'{"ttl_s": true}', b'{"ttl_s": "60"}'])
def test_a_lease_ttl_must_be_a_finite_number_in_range(server, body):
    with client(server) as http:
        response = http.post(f"/v1/robots/{ROBOT}/lease", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "ttl_s"]


@pytest.mark.parametrize("path, body", [
    (f"/v1/robots/{ROBOT}/reset", b'{"seed": NaN}'),
    (f"/v1/robots/{ROBOT}/reset", b'{"seed": 1e999}'),
    (f"/v1/robots/{ROBOT}/reset", b'{"seed": 3.0}'),
    (f"/v1/robots/{ROBOT}/reset", b'{"seed": 1' + b"0" * 30 + b"}"),
    (f"/v1/robots/{ROBOT}/reset", b'{"seed": true}'),
    (f"/v1/robots/{ROBOT}/step", b'{"action": [0, 0, 0, 0], "wait_recorded": "yes"}'),
    ("/v1/tasks", b'{"task": "reach-v3", "episodes": Infinity}'),
    ("/v1/tasks", b'{"task": "reach-v3", "episodes": 1e300}'),
    ("/v1/tasks", b'{"task": "reach-v3", "robots": 1' + b"0" * 30 + b"}"),
    ("/v1/tasks", b'{"task": "reach-v3", "robots": true}'),
    ("/v1/fleet/step", b'{"steps": [{"robot": "' + ROBOT.encode() + b'", "action": [0, 0, 0, 0], "lease_id": NaN}]}'),
])
def test_non_finite_and_absurd_numbers_in_a_body_are_422(server, path, body):
    with client(server) as http:
        response = http.post(path, content=body, headers=JSON)
    assert response.status_code == 422, response.text
    json.loads(response.text)  # plain JSON: a NaN in the input is named as a string


def test_a_number_too_long_to_parse_is_a_client_error(server):
    with client(server) as http:
        response = http.post(f"/v1/robots/{ROBOT}/lease", content=b'{"ttl_s": 1' + b"0" * 5000 + b"}", headers=JSON)
    assert 400 <= response.status_code < 500, response.text


def test_non_finite_actions_are_named_in_a_fleet_step(server):
    with client(server) as http:
        http.post(f"/v1/robots/{ROBOT}/lease", json={"ttl_s": 60})
        assert http.post(f"/v1/robots/{ROBOT}/reset", json={"seed": 2}).status_code == 200
        body = b'{"steps": [{"robot": "' + ROBOT.encode() + b'", "action": [NaN, 0, 0, Infinity]}]}'
        outcome = http.post("/v1/fleet/step", content=body, headers=JSON)
    assert outcome.status_code == 200, outcome.text  # each robot's outcome is its own
    assert outcome.json()[0]["status"] == 422 and "NaN or inf" in outcome.json()[0]["detail"]


# -- ids -------------------------------------------------------------------------------------
def test_a_stale_lease_id_is_called_stale_not_another_agents(server):
    with client(server) as http, client(server, "other") as other:
        old = http.post(f"/v1/robots/{ROBOT}/lease", json={"ttl_s": 30}).json()["lease_id"]
        new = http.post(f"/v1/robots/{ROBOT}/lease", json={"ttl_s": 30}).json()["lease_id"]
        assert new != old
        for response in (http.post(f"/v1/robots/{ROBOT}/reset", json={"lease_id": old}),
                         http.post(f"/v1/robots/{ROBOT}/step", json={"lease_id": old, "action": [0, 0, 0, 0]}),
                         http.post(f"/v1/leases/{old}/renew", json={"ttl_s": 5}),
                         http.delete(f"/v1/leases/{old}")):
            assert response.status_code == 409 and "stale" in response.json()["detail"], response.text
            assert "another agent" not in response.json()["detail"]
        assert http.post(f"/v1/robots/{ROBOT}/reset", json={"lease_id": new}).status_code == 200
        # the other key is told the robot is someone else's, and its own stale id is not confused with this one
        taken = other.post(f"/v1/robots/{ROBOT}/reset", json={"lease_id": new})
        assert taken.status_code == 409 and "another agent" in taken.json()["detail"]
        assert http.post(f"/v1/robots/{ROBOT}/reset", json={"lease_id": "not-a-lease"}).status_code == 422
        assert http.delete(f"/v1/leases/{new}").status_code == 204
        released = http.post(f"/v1/robots/{ROBOT}/reset", json={"lease_id": new})
        assert released.status_code == 409 and "stale" in released.json()["detail"]


def _record_episode(http) -> int:
    http.post(f"/v1/robots/{ROBOT}/lease", json={"ttl_s": 60})
    http.post(f"/v1/robots/{ROBOT}/reset", json={"seed": 0})
    result = http.post(f"/v1/robots/{ROBOT}/step", json={"actions": [[0, 0, 0, 0]] * 20}).json()
    assert result["episode_id"] is not None, result
    return result["episode_id"]


def test_odd_episode_ids_never_resolve(server):
    with client(server) as http:
        _record_episode(http)
        one = _record_episode(http)  # at least 1
        assert http.get(f"/v1/episodes/{one}").status_code == 200
        digits = str(one)
        quoted = "".join(f"%{ord(c):02X}" for c in digits)
        odd = [f"%20{quoted}", f"{quoted}%20", f"{digits}.0", f"+{digits}", f"%2B{digits}", f"0{digits}", f"{digits}e0",
               f"0x{one:x}", f"{digits[:-1]}_{digits[-1]}" if one >= 10 else f"0_{digits}",
               "".join(chr(0x660 + int(c)) for c in digits)]  # Arabic-Indic digits: int() reads them
        for path in odd:
            for suffix in ("", "/download"):
                response = http.get(f"/v1/episodes/{path}{suffix}")
                assert response.status_code in (404, 422), (path, suffix, response.text)
        assert http.get("/v1/episodes/-0").status_code == 422
        assert http.get("/v1/episodes/99999999999999999999999999").status_code in (404, 422)


# -- heads and bodies ------------------------------------------------------------------------
def test_a_1mb_authorization_header_is_431(server):
    response = httpx.get(f"{server.url}/v1/robots", headers={"Authorization": "Bearer wam_" + "x" * (1 << 20)}, timeout=30)
    assert response.status_code == 431, response.text


def test_an_oversized_head_is_refused_before_it_ends(server):
    """The server answers 431 while the head is still arriving: it never holds more than the limit and one read."""
    with raw(server) as sock:
        sock.sendall(b"GET /v1/robots HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wam_" + b"x" * 16384)
        assert sock.recv(65536).startswith(b"HTTP/1.1 431 ")


def test_failed_keys_are_not_cached(server):
    auth = server.app.state.auth
    before = len(auth._cache)
    for i in range(150):
        bogus = f"wam_{i:012x}_" + "y" * 4000  # distinct, key-shaped, just under the head limit
        response = httpx.get(f"{server.url}/v1/robots", headers={"Authorization": f"Bearer {bogus}"})
        assert response.status_code == 401
    assert len(auth._cache) <= before


def test_a_client_sending_one_header_line_at_a_time_is_disconnected(server):
    start = time.monotonic()
    with raw(server) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        try:
            for i in range(30):
                sock.sendall(b"X-Slow-%d: 1\r\n" % i)
                time.sleep(0.25)
        except OSError:  # the server closed the connection
            pass
        try:
            answer = read_all(sock)
        except ConnectionResetError:
            pass
    assert time.monotonic() - start < 4.0  # head_timeout_s is 1 s
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")


def test_a_silent_connection_is_closed(server):
    start = time.monotonic()
    with raw(server) as sock:
        assert read_all(sock) == b""
    assert time.monotonic() - start < 4.0


def test_a_body_that_does_not_arrive_is_408(server):
    start = time.monotonic()
    with raw(server) as sock:
        sock.sendall(f"POST /v1/robots/{ROBOT}/lease HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 100\r\nAuthorization: Bearer {server.keys['control']}\r\n\r\n{{\"ttl".encode())
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert time.monotonic() - start < 5.0  # body_timeout_s is 2 s


def test_a_chunked_body_over_the_limit_is_413(server):
    def chunks(total: int):
        for _ in range(total // 65536):
            yield b" " * 65536

    with client(server) as http:
        response = http.post(f"/v1/robots/{ROBOT}/lease", content=chunks(3 << 20), headers=JSON)
        assert response.status_code == 413, response.text
        small = http.post(f"/v1/robots/{ROBOT}/lease", content=iter([b'{"ttl_s":', b" 5}"]), headers=JSON)
        assert small.status_code == 201, small.text  # a chunked body within the limit is read as usual


# -- the log ---------------------------------------------------------------------------------
def test_a_client_closing_its_websocket_logs_no_traceback(server):
    from websockets.sync.client import connect

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "wam")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with client(server) as http:
            http.post(f"/v1/robots/{ROBOT}/lease", json={"ttl_s": 60})
            http.post(f"/v1/robots/{ROBOT}/reset", json={"seed": 1})
            url = server.url.replace("http", "ws") + f"/v1/robots/{ROBOT}/stream"
            headers = {"Authorization": f"Bearer {server.keys['control']}"}
            for _ in range(3):
                with connect(url, additional_headers=headers) as ws:
                    assert json.loads(ws.recv(timeout=10))["robot"] == ROBOT
                    http.post(f"/v1/robots/{ROBOT}/step", json={"action": [0, 0, 0, 0]})  # closed mid-send, maybe
            time.sleep(1.0)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert "Traceback" not in stream.getvalue() and "Exception" not in stream.getvalue(), stream.getvalue()


# -- counters --------------------------------------------------------------------------------
def test_episodes_done_matches_the_recorded_episodes_after_a_kill(tmp_path):
    """A server killed between an episode's commit and its run's count: the next start counts it."""
    from wam.api.recorder import Recorder
    from wam.api.store import Store
    from wam.api.worker import WorkerConfig, dataset_features
    from wam.data import Episode
    from wam.data.video import VideoConfig
    from wam.data.writer import stage_episode

    config = WorkerConfig(tmp_path / "data", obs="state")
    store = Store(f"sqlite:///{tmp_path / 'api.db'}")
    store.add_run("run-1", "reach-v3", "random", [ROBOT], 10, "")
    features = dataset_features(config)

    def staged(success: bool):
        data = {k: np.zeros((6, *f.shape), bool if f.dtype == "bool" else f.dtype) for k, f in features.items()}
        info = {"source": "api", "run": "run-1", "robot": ROBOT, "end_reason": "success" if success else "time_limit"}
        return stage_episode(config.data, Episode("reach", {}, data, success=success, info=info), features, 10, VideoConfig())

    recorder = Recorder(config, store)
    recorder.commit(ROBOT, staged(True), "run-1")
    recorder.commit(ROBOT, staged(False), "run-1")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    store.count_run_episode = killed  # the kill lands after the commit, before the count
    with pytest.raises(KeyboardInterrupt):
        recorder.commit(ROBOT, staged(True), "run-1")
    recorder.close()
    del store.count_run_episode
    assert store.get_run("run-1").episodes_done == 2

    Recorder(config, store).close()  # the next start
    run = store.get_run("run-1")
    assert (run.episodes_done, run.successes) == (3, 2)
    assert len(store.list_episodes(run_id="run-1")) == 3
    store.close()
