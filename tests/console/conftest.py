"""One headless Chromium per test module of the console (tests/support/browser.py)."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium_driver


@pytest.fixture(scope="module")
def chrome():
    driver = chromium_driver()
    yield driver
    driver.quit()
