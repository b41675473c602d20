"""The web console under load: the fleet page with 64 robots, its live frames, and what open consoles cost the API.

    python benchmarks/console_load.py [--robots 64] [--consoles 5] [--seconds 20]

Starts `wam serve` with N pixel robots (64x64, one worker process each), then measures, in this order:
1. the fleet page's load time over loopback: the server's answer (httpx, 20 loads) and a real browser's
   (headless Chromium: navigation start to the load event);
2. the control channel alone for `--seconds` (one WebSocket, a command for every robot a message, as api_load's ws:1);
3. the same load with `--consoles` headless Chromium windows on the fleet page, each counting the frames its visible
   robots receive: frames per second per visible robot, and the control channel's actions/s as a ratio to (2).
The issue's bars: page load under 1 s, frames at 2 or more a second per visible robot, the control channel's
throughput kept. Writes benchmarks/results/console_load.json. Needs quiet cores and Debian's chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_load import load_control  # noqa: E402

RESULTS = Path(__file__).parent / "results"
COUNT_VISIBLE = """const seen = Array.from(document.querySelectorAll('img.frame')).filter(function (img) {
  const box = img.getBoundingClientRect(); return box.bottom > 0 && box.top < window.innerHeight; });
return seen.map(img => Number(img.dataset.frames || 0));"""


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        sys.exit("needs Chromium: apt-get install -y --no-install-recommends chromium chromium-driver")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def sign_in(driver, url: str, key: str) -> float:
    from selenium.webdriver.common.by import By

    driver.get(url + "/console/signin")
    driver.find_element(By.NAME, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
    deadline = time.monotonic() + 60
    while not driver.current_url.endswith("/console/fleet") and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.get(url + "/console/fleet")  # a fresh navigation, timed by the browser itself
    return driver.execute_script("const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;")


def page_loads(url: str, key: str, count: int = 20) -> list[float]:
    with httpx.Client(base_url=url) as client:
        client.post("/console/signin", data={"key": key})
        times = []
        for _ in range(count):
            start = time.perf_counter()
            client.get("/console/fleet").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", type=int, default=64)
    parser.add_argument("--consoles", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--out", type=Path, default=RESULTS / "console_load.json")
    args = parser.parse_args()

    from wam.api.auth import create_key
    from wam.api.server import default_db
    from wam.api.store import Store

    data = Path(tempfile.mkdtemp(prefix="wam-console-load-")) / "fleet"
    store = Store(default_db(data))
    _, key = create_key(store, "control", name="console_load")
    store.close()
    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "wam.cli", "serve", "--robots", f"metaworld/reach-v3*{args.robots}",
                               "--data", str(data), "--obs", "pixels", "--max-episode-steps", "500", "--port", str(args.port)],
                              start_new_session=True)
    robots = [f"reach-v3-{i}" for i in range(args.robots)]
    drivers = []
    try:
        started = time.perf_counter()
        while True:
            try:
                if httpx.get(f"{url}/v1/health").json()["ready"] == args.robots:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - started > 900:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        print(f"{args.robots} pixel robots ready in {time.perf_counter() - started:.1f} s")
        server_ms = page_loads(url, key)
        drivers.append(browser())
        browser_ms = sign_in(drivers[0], url, key)
        print(f"fleet page: server p50 {np.median(server_ms):.0f} ms, browser load {browser_ms:.0f} ms")
        alone = asyncio.run(load_control(url, key, robots, args.seconds, 1, server_pid=server.pid))
        print(f"control channel alone: {alone['actions_per_s']:.0f} actions/s")
        for _ in range(args.consoles - 1):
            drivers.append(browser())
            sign_in(drivers[-1], url, key)
        before = [d.execute_script(COUNT_VISIBLE) for d in drivers]
        result: dict = {}
        thread = threading.Thread(target=lambda: result.update(
            asyncio.run(load_control(url, key, robots, args.seconds, 1, server_pid=server.pid))))
        start = time.perf_counter()
        thread.start()
        thread.join()
        elapsed = time.perf_counter() - start
        after = [d.execute_script(COUNT_VISIBLE) for d in drivers]
        rates = [(b2 - b1) / elapsed for first, last in zip(before, after) for b1, b2 in zip(first, last)]
        print(f"with {args.consoles} consoles: {result['actions_per_s']:.0f} actions/s "
              f"({result['actions_per_s'] / alone['actions_per_s']:.2f}x alone); frames per visible robot: median "
              f"{np.median(rates):.2f}/s, lowest {min(rates):.2f}/s over {len(rates)} images")
    finally:
        for driver in drivers:
            driver.quit()
        os.killpg(server.pid, signal.SIGINT)
        server.wait(120)
    results = {"command": "python benchmarks/console_load.py " + " ".join(sys.argv[1:]), "robots": args.robots,
               "consoles": args.consoles, "page_load_ms": {"server_p50": float(np.median(server_ms)),
                                                           "server_p90": float(np.percentile(server_ms, 90)),
                                                           "browser": float(browser_ms)},
               "control_alone": alone, "control_with_consoles": result,
               "throughput_ratio": result["actions_per_s"] / alone["actions_per_s"],
               "frames_per_visible_robot": {"median": float(np.median(rates)), "lowest": float(min(rates)), "images": len(rates)},
               "targets": {"page_load_ms": 1000, "frames_per_s": 2}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2))
    os.replace(temporary, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
