"""wam: World Action Models for robot learning.

Pretrain a world model on action-free video, finetune it on a few robot demos into a
World Action Model, improve and evaluate policies in the learned world, and serve a fleet
of robots through one Physical API that records every episode for training.
"""

import os as _os

# Two cores are often shared (a collector beside a training run): OpenMP threads that spin
# while waiting then slow torch down several times over; passive waiting costs little alone.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
