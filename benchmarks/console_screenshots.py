"""Screenshots of the web console for the docs, taken by headless Chromium from a live fleet, never drawn by hand.

    python benchmarks/console_screenshots.py     # writes docs/media/console_fleet.png and docs/media/console_episode.png

A fleet of four simulated Meta-World robots is served with the console; each is reset and driven a few steps, one is
emergency-stopped, and one recorded episode is opened. Needs Debian's `chromium` and `chromium-driver`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "docs" / "media"


def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        sys.exit("needs Chromium: apt-get install -y --no-install-recommends chromium chromium-driver")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,760",
                 "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def main() -> None:
    from selenium.webdriver.common.by import By

    from wam.api.auth import create_key
    from wam.api.server import BackgroundServer, ServerConfig
    from wam.api.store import Store
    from wam.console.fleet import mount_console

    MEDIA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        config = ServerConfig("metaworld/reach-v3*2,metaworld/drawer-open-v3,metaworld/button-press-v3", Path(work) / "data",
                              max_episode_steps=200)
        store = Store(config.db_url)
        _, key = create_key(store, "control", name="operator")
        store.close()
        server = BackgroundServer(config)
        mount_console(server.app)
        with server:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
                for i, robot in enumerate(r["id"] for r in api.get("/v1/robots").json()):
                    lease = api.post(f"/v1/robots/{robot}/lease", json={"ttl_s": 600}).json()["lease_id"]
                    api.post(f"/v1/robots/{robot}/reset", json={"seed": i}).raise_for_status()
                    api.post(f"/v1/robots/{robot}/step", json={"lease_id": lease, "actions": [[0.6, 0.4, -0.2, 0]] * 30})
                    if i == 0:
                        api.post(f"/v1/robots/{robot}/reset", json={"seed": 9}).raise_for_status()  # records episode 0
                api.post("/v1/robots/drawer-open-v3-0/estop").raise_for_status()
                deadline = time.monotonic() + 30
                while not api.get("/v1/episodes").json() and time.monotonic() < deadline:
                    time.sleep(0.2)
            driver = chrome()
            try:
                driver.get(server.url + "/console/signin")
                driver.find_element(By.NAME, "key").send_keys(key)
                driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
                time.sleep(2.0)  # a few frame refreshes
                driver.save_screenshot(str(MEDIA / "console_fleet.png"))
                driver.get(server.url + "/console/episodes/0")
                time.sleep(2.5)  # the video plays, the cursor moves
                driver.save_screenshot(str(MEDIA / "console_episode.png"))
            finally:
                driver.quit()
    print(f"wrote {MEDIA.relative_to(ROOT)}/console_fleet.png and console_episode.png")


if __name__ == "__main__":
    main()
