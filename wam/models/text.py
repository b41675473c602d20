"""Task text -> one embedding, offline, with nothing to download.

Words are hashed into a fixed number of buckets (a tokenizer with no vocabulary file, so
any instruction works, including ones never seen), embedded, mean-pooled and projected.
The embedding is learned with the world model; instructions that share words share
buckets, which is what lets a new instruction borrow from known ones.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import torch
from torch import nn

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class TextConfig:
    buckets: int = 2048
    max_words: int = 16
    dim: int = 128


def hash_tokens(text: str, config: TextConfig) -> list[int]:
    """Bucket ids (1..buckets-1) of the words and word pairs of `text`; 0 is padding."""
    words = _WORD.findall(text.lower())[: config.max_words]
    grams = words + [f"{a}_{b}" for a, b in zip(words, words[1:])]
    return [1 + zlib.crc32(g.encode()) % (config.buckets - 1) for g in grams] or [1]


def tokenize(texts: list[str], config: TextConfig) -> torch.Tensor:
    """(B, L) int64 bucket ids, zero-padded."""
    ids = [hash_tokens(t, config) for t in texts]
    width = max(len(i) for i in ids)
    out = torch.zeros(len(ids), width, dtype=torch.long)
    for row, tokens in enumerate(ids):
        out[row, : len(tokens)] = torch.tensor(tokens)
    return out


class TextEncoder(nn.Module):
    def __init__(self, config: TextConfig, out_dim: int):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.buckets, config.dim, padding_idx=0)
        self.project = nn.Sequential(nn.LayerNorm(config.dim), nn.Linear(config.dim, out_dim))

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        mask = (token_ids > 0).unsqueeze(-1).float()  # (B, L, 1)
        pooled = (self.embedding(token_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.project(pooled)  # (B, out_dim)
