"""A real browser for the console's tests: Debian's headless Chromium driven by Selenium, nothing downloaded.

Where Chromium is not installed the browser tests skip with the command that installs it; CI installs it and sets
WAM_REQUIRE_BROWSER, so there they fail instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

INSTALL = "apt-get install -y --no-install-recommends chromium chromium-driver"


def chromium_driver():
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        if os.environ.get("WAM_REQUIRE_BROWSER"):
            raise RuntimeError(f"WAM_REQUIRE_BROWSER is set but Chromium is missing: {INSTALL}")
        pytest.skip(f"no Chromium here for the browser tests: {INSTALL}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def wait_for(condition, seconds: float = 20.0):
    """The first truthy value of `condition()`, polled every 0.1 s; an AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds:.0f} s")
