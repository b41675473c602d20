"""Where a bridge dials (BridgeConfig in wam/bridge/bridge.py), and that the bridge needs nothing of the training stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wam.bridge import BridgeConfig


@pytest.mark.parametrize("url, endpoint", [
    ("http://192.168.1.10:8000", "ws://192.168.1.10:8000/v1/bridge/so100-0"),
    ("http://192.168.1.10:8000/", "ws://192.168.1.10:8000/v1/bridge/so100-0"),
    ("http://192.168.1.10:8000/v1", "ws://192.168.1.10:8000/v1/bridge/so100-0"),
    ("http://192.168.1.10:8000/v1/", "ws://192.168.1.10:8000/v1/bridge/so100-0"),
    ("https://robots.example.com", "wss://robots.example.com/v1/bridge/so100-0"),
    ("https://robots.example.com//", "wss://robots.example.com/v1/bridge/so100-0"),
    ("https://example.com/fleet/v1/", "wss://example.com/fleet/v1/bridge/so100-0"),  # behind a proxy's path
    ("https://http.example.com", "wss://http.example.com/v1/bridge/so100-0"),
    ("ws://localhost:8000", "ws://localhost:8000/v1/bridge/so100-0"),
    ("wss://[::1]:8443/v1", "wss://[::1]:8443/v1/bridge/so100-0"),
])
def test_the_endpoint_is_the_servers_bridge_route(url, endpoint):
    assert BridgeConfig(url, "wam_key", "so100-0").endpoint == endpoint


@pytest.mark.parametrize("url, message", [
    ("192.168.1.10:8000", "must start with http://, https://, ws:// or wss://"),
    ("ftp://host", "must start with"),
    ("http://", "names no host"),
    ("http://:8000/v1", "names no host"),
    ("http://host:80OO", "is not a URL: Port could not be cast"),
    ("http://host:70000", "is not a URL: Port out of range"),
    ("http://[::1:8000", "is not a URL"),
])
def test_urls_it_could_never_dial_are_refused(url, message):
    with pytest.raises(ValueError, match=message):
        BridgeConfig(url, "wam_key", "so100-0")


@pytest.mark.parametrize("name", ["watchdog_s", "reconnect_s", "reconnect_max_s", "open_timeout_s"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_durations_must_be_positive(name, value):
    with pytest.raises(ValueError, match=f"bridge {name} must be positive, got {value}"):
        BridgeConfig("http://host", "wam_key", "so100-0", **{name: value})


def test_importing_the_bridge_imports_nothing_of_the_training_stack():
    """A robot's computer has numpy and websockets; the bridge must not need torch, the server or the simulators."""
    code = ("import json, sys\nimport wam.bridge, wam.bridge.cli\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert "numpy" in loaded and "wam" in loaded
    assert loaded.isdisjoint({"torch", "fastapi", "gymnasium", "metaworld", "mujoco", "starlette"}), loaded
