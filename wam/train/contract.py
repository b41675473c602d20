"""The batch contract: the keys, shapes and dtypes every training source produces.

Models read batches by key; a source that drifts (a missing mask, actions of another width)
would otherwise fail deep inside a forward pass, or worse, broadcast silently. Each contract
names its dimensions by letter, and `check_batch` binds them on the first key that has them,
so "the state has S values" means the same S in `state` and wherever else it appears.

Dimensions: B batch, W window frames, C latent channels, h latent height, X latent width
(V camera views side by side: V*h), K control steps between frames (the stride), A action
size, S state size, H action-chunk length, L text tokens, F frame height, G frame width
(V*F).
"""

from __future__ import annotations

from typing import Mapping

import torch

Contract = Mapping[str, tuple[tuple[str, ...], torch.dtype]]

FRAME_BATCH: Contract = {"frames": (("B", "3", "F", "G"), torch.uint8)}  # the tokenizer's single frames

WINDOW_BATCH: Contract = {
    "latents": (("B", "W", "C", "h", "X"), torch.float32),
    "state": (("B", "W", "S"), torch.float32),
    "state_mask": (("B", "W"), torch.bool),
    "action": (("B", "W", "K", "A"), torch.float32),  # the actions from each frame to the next
    "action_mask": (("B", "W"), torch.bool),
    "reward": (("B", "W"), torch.float32),  # received on arriving at each frame
    "success": (("B", "W"), torch.bool),
    "reward_mask": (("B", "W"), torch.bool),
    "text_ids": (("B", "L"), torch.int64),
}

CHUNK_KEYS: Contract = {  # labelled windows for the WAM's policy head add the next H actions from every frame
    "action_chunk": (("B", "W", "H", "A"), torch.float32),
    "action_chunk_mask": (("B", "W", "H"), torch.bool),
}


def check_batch(batch: Mapping[str, object], contract: Contract, where: str = "batch") -> dict[str, int]:
    """Raise ValueError naming the first key that is missing or off-contract; return the bound dimensions."""
    sizes: dict[str, int] = {}
    for key, (dims, dtype) in contract.items():
        if key not in batch:
            raise ValueError(f"{where}: no {key!r} (the contract needs {', '.join(contract)})")
        value = batch[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}: {key!r} is a {type(value).__name__}, not a tensor")
        if value.dtype != dtype:
            raise ValueError(f"{where}: {key!r} is {value.dtype}, the contract says {dtype}")
        if value.dim() != len(dims):
            raise ValueError(f"{where}: {key!r} has shape {tuple(value.shape)}, the contract says ({', '.join(dims)})")
        for dim, size in zip(dims, value.shape):
            expected = int(dim) if dim.isdigit() else sizes.setdefault(dim, int(size))
            if size != expected:
                raise ValueError(f"{where}: {key!r} has {dim} = {size} where earlier keys had {expected} "
                                 f"(shape {tuple(value.shape)})")
    return sizes
