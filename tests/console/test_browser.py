"""The console in a real browser (headless Chromium): sign in, live frames, an emergency stop pressed in the page."""

from __future__ import annotations

import httpx
import pytest

from tests.support.browser import wait_for
from tests.support.live_server import start_live
from wam.console.fleet import mount_console

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    state, server, thread = start_live(tmp_path_factory.mktemp("console_browser"), "metaworld/reach-v3*2",
                                       max_episode_steps=500, extend=mount_console)
    yield state
    server.should_exit = True
    thread.join(60)


def api(live, key="control"):
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys[key]}"}, timeout=60)


def sign_in(chrome, live, key: str) -> None:
    from selenium.webdriver.common.by import By

    chrome.delete_all_cookies()
    chrome.get(live.url + "/console/signin")
    chrome.find_element(By.NAME, "key").send_keys(live.keys[key])
    chrome.find_element(By.CSS_SELECTOR, "form.signin button").click()
    wait_for(lambda: chrome.current_url.endswith("/console/fleet"))




CHECKSUM = """const img = document.querySelector('img.frame[data-robot="' + arguments[0] + '"]');
if (!img.complete || !img.naturalWidth) return null;
const canvas = document.createElement('canvas'); canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext('2d'); context.drawImage(img, 0, 0);
return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data).reduce((a, b) => (a * 31 + b) % 1000000007, 7);"""


def test_a_control_key_sees_two_robots_whose_frames_update(live, chrome):
    from selenium.webdriver.common.by import By

    with api(live) as client:
        lease = client.post("/v1/robots/reach-v3-0/lease", json={"ttl_s": 120}).json()["lease_id"]
        client.post("/v1/robots/reach-v3-0/reset", json={"seed": 1}).raise_for_status()
        sign_in(chrome, live, "control")
        assert len(chrome.find_elements(By.CSS_SELECTOR, "article.robot")) == 2
        before = wait_for(lambda: chrome.execute_script(CHECKSUM, "reach-v3-0"))
        loads = int(wait_for(lambda: chrome.find_element(By.CSS_SELECTOR, 'img.frame[data-robot="reach-v3-0"]')
                             .get_attribute("data-frames")))
        client.post("/v1/robots/reach-v3-0/step", json={"lease_id": lease, "actions": [[1.0, 0.0, 0.0, 0.0]] * 20})
        wait_for(lambda: chrome.execute_script(CHECKSUM, "reach-v3-0") not in (None, before))
        assert int(chrome.find_element(By.CSS_SELECTOR, 'img.frame[data-robot="reach-v3-0"]').get_attribute("data-frames")) > loads
        wait_for(lambda: chrome.find_element(By.CSS_SELECTOR, 'article[data-robot="reach-v3-0"] .steps').text != "0")
        client.delete(f"/v1/leases/{lease}")


def test_an_estop_pressed_in_the_page_stops_the_robot(live, chrome):
    from selenium.webdriver.common.by import By

    sign_in(chrome, live, "control")
    chrome.find_element(By.CSS_SELECTOR, 'button.estop[data-robot="reach-v3-1"]').click()
    alert = wait_for(lambda: _alert(chrome))
    assert "reach-v3-1" in alert.text and "stops before its next action" in alert.text
    alert.accept()
    with api(live, "read") as client:
        wait_for(lambda: client.get("/v1/robots/reach-v3-1").json()["estopped"])
    wait_for(lambda: chrome.find_element(By.CSS_SELECTOR, 'article[data-robot="reach-v3-1"] .estopped').text == "STOPPED")
    with api(live) as client:
        steps = client.get("/v1/robots/reach-v3-1").json()["steps"]
        lease = client.post("/v1/robots/reach-v3-1/lease", json={"ttl_s": 60})
        if lease.status_code == 201:
            refused = client.post("/v1/robots/reach-v3-1/step", json={"lease_id": lease.json()["lease_id"],
                                                                   "actions": [[0.5, 0, 0, 0]]})
            assert refused.status_code >= 400
        assert client.get("/v1/robots/reach-v3-1").json()["steps"] == steps  # nothing ran after the stop


def _alert(chrome):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return chrome.switch_to.alert
    except NoAlertPresentException:
        return None


def test_a_read_key_gets_no_button_and_a_forged_post_is_refused(live, chrome):
    from selenium.webdriver.common.by import By

    sign_in(chrome, live, "read")
    assert len(chrome.find_elements(By.CSS_SELECTOR, "article.robot")) == 2
    assert chrome.find_elements(By.CSS_SELECTOR, "button") == []
    sign_in(chrome, live, "control")
    status = chrome.execute_async_script(
        "const done = arguments[0]; fetch('/console/robots/reach-v3-0/estop', {method: 'POST', credentials: 'same-origin'})"
        ".then(r => done(r.status));")
    assert status == 403
    with api(live, "read") as client:
        assert not client.get("/v1/robots/reach-v3-0").json()["estopped"]


def test_a_bad_key_shows_one_clear_line(live, chrome):
    from selenium.webdriver.common.by import By

    chrome.delete_all_cookies()
    chrome.get(live.url + "/console/signin")
    chrome.find_element(By.NAME, "key").send_keys("wam_forged_key")
    chrome.find_element(By.CSS_SELECTOR, "form.signin button").click()
    errors = wait_for(lambda: chrome.find_elements(By.CSS_SELECTOR, ".error"))
    assert len(errors) == 1 and "unknown or has been revoked" in errors[0].text
