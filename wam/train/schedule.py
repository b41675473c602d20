"""The optimiser and its learning-rate schedule, shared by every training stage.

The learning rate is a pure function of the global step (linear warm-up, then cosine decay
to a floor), so resuming needs no scheduler state: step N gets the same rate whether the
run was interrupted or not.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak rate at 1-based `step`: step/warmup up to 1 at `warmup_steps`, cosine to `min_lr_ratio` at `total_steps`."""
    if warmup_steps > 0 and step <= warmup_steps:
        return step / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0:
        return 1.0
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def no_decay(model: nn.Module) -> set[str]:
    """Names of parameters kept out of weight decay: biases, norm scales and embeddings.

    Decay pulls weights towards zero; on a bias, a norm gain or an embedding table that is
    a pull towards a meaningless value, not a regulariser. A parameter counts as an
    embedding if it belongs to an `nn.Embedding` or its name says `embed` (positional
    embeddings held as bare parameters).
    """
    names: set[str] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if param.ndim < 2 or isinstance(module, nn.Embedding) or "embed" in param_name.lower():
                names.add(full)
    return names


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.95), fused: bool = False
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, in two groups: decayed (matrices) and not decayed. `fused`: one kernel
    for the whole update (CUDA parameters only); the optimiser state is the same, so a run resumes either way."""
    skip = no_decay(model)
    decay, keep = [], []
    for name, param in model.named_parameters():  # tied parameters are listed once
        if param.requires_grad:
            (keep if name in skip else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, **({"fused": True} if fused else {}))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
