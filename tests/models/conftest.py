"""Shared pieces of the model tests: the `tiny` preset's configs and one thread for torch.

The machine these run on is shared with long jobs; small models run several times faster
on one thread than on two contended ones, and the results do not depend on it.
"""

from __future__ import annotations

import pytest
import torch

from wam.config import pretrain_preset



@pytest.fixture(scope="module")
def tiny():
    return pretrain_preset("tiny")
