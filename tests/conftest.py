"""Fixtures every test module shares: one torch thread, and the plugins of tests/support."""

import pytest
import torch

pytest_plugins = ["tests.support.live_server"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run several times faster on one thread than on two cores shared with other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
