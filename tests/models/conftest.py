"""Shared pieces of the model tests: the `tiny` preset's configs and one thread for torch.

The machine these run on is shared with long jobs; small models run several times faster
on one thread than on two contended ones, and the results do not depend on it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from wam.config import pretrain_preset



STATE_DIM = 4  # the robot state of the models under test, as a dataset with a 4-d state would set it


@pytest.fixture(scope="module")
def tiny():
    config = pretrain_preset("tiny")
    return replace(config, world=replace(config.world, state_dim=STATE_DIM))
