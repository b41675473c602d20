"""Bring camera frames of any size and aspect to the model's square resolution.

Three ways to fit a non-square frame, named in the run so a policy fits its camera the same
way it was trained: `pad` (the default) scales the long side to the resolution and pads the
short one with black, so nothing in view is lost (a goal near the image edge stays visible);
`crop` scales the short side and cuts the centre (no wasted pixels, the edges are gone);
`stretch` scales each side on its own (distorts shapes). Downscaling is antialiased.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FIT_MODES = ("pad", "crop", "stretch")


def check_fit(mode: str) -> str:
    if mode not in FIT_MODES:
        raise ValueError(f"image fit must be one of {', '.join(FIT_MODES)}, got {mode!r}")
    return mode


def fit_frames(frames: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8; frames already at the size pass through untouched."""
    check_fit(mode)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    t, h, w, _ = frames.shape
    if (h, w) == (size, size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if mode == "stretch":
        out = _resize(x, size, size)
    elif mode == "crop":
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        x = _resize(x, nh, nw)
        top, left = (nh - size) // 2, (nw - size) // 2
        out = x[:, :, top : top + size, left : left + size]
    else:
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = _resize(x, nh, nw)
        out = torch.zeros(t, 3, size, size)
        top, left = (size - nh) // 2, (size - nw) // 2
        out[:, :, top : top + nh, left : left + nw] = x
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if x.shape[-2:] == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
