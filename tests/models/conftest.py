"""Shared pieces of the model tests: the `tiny` preset's configs and one thread for torch.

The machine these run on is shared with long jobs; small models run several times faster
on one thread than on two contended ones, and the results do not depend on it.
"""

from __future__ import annotations

import pytest
import torch

from wam.config import pretrain_preset


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return pretrain_preset("tiny")
