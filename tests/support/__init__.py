"""Helpers shared by the test modules, imported as a package: `from tests.support.lerobot_like import ...`.

`live_server` is also a pytest plugin (tests/conftest.py registers it), so its fixtures reach every test directory.
"""
