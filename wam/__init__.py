"""wam: World Action Models for robot learning.

Pretrain a world model on action-free video, finetune it on a few robot demos into a
World Action Model, improve and evaluate policies in the learned world, and serve a fleet
of robots through one Physical API that records every episode for training.
"""

__version__ = "0.1.0"
