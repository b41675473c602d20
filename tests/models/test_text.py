"""Hashed text tokens and the text encoder: any instruction, no vocabulary file."""

from __future__ import annotations

import torch

from wam.models.text import TextConfig, TextEncoder, hash_tokens, tokenize

CFG = TextConfig(buckets=256, max_words=16, dim=32)


def test_hash_tokens_is_deterministic_and_in_range():
    text = "Open the top drawer, then push it!"
    ids = hash_tokens(text, CFG)
    assert ids == hash_tokens(text, CFG)
    assert ids == hash_tokens(text.upper(), CFG)  # case and punctuation do not matter
    assert ids == hash_tokens("open   the top drawer then push it", CFG)
    assert all(1 <= i <= CFG.buckets - 1 for i in ids)
    words = 7
    assert len(ids) == words + (words - 1)  # words and word pairs


def test_empty_and_unknown_text():
    assert hash_tokens("", CFG) == [1]
    assert hash_tokens("  ?!.  ", CFG) == [1]
    ids = hash_tokens("zyzzyva quux-frobnicate 42", CFG)
    assert len(ids) == 4 + 3 and all(1 <= i < CFG.buckets for i in ids)


def test_different_instructions_give_different_ids():
    tasks = ["reach the goal", "push the puck", "open the drawer", "close the drawer", "drawer open the"]
    ids = [tuple(hash_tokens(t, CFG)) for t in tasks]
    assert len(set(ids)) == len(tasks)
    # shared words share buckets: that is what lets a new instruction borrow from known ones
    assert set(hash_tokens("open the drawer", CFG)) & set(hash_tokens("close the drawer", CFG))


def test_max_words_truncates():
    cfg = TextConfig(buckets=256, max_words=3, dim=8)
    assert hash_tokens("a b c d e f", cfg) == hash_tokens("a b c", cfg)


def test_tokenize_pads_with_zero():
    ids = tokenize(["push", "open the top drawer", ""], CFG)
    assert ids.dtype == torch.long and ids.shape == (3, 4 + 3)
    assert (ids[0, 1:] == 0).all() and (ids[0, 0] > 0)
    assert (ids[1] > 0).all()
    assert ids[2].tolist()[:1] == [1] and (ids[2, 1:] == 0).all()


def test_text_encoder_output_shape_and_padding_invariance():
    torch.manual_seed(0)
    encoder = TextEncoder(CFG, out_dim=48).eval()
    ids = tokenize(["push the puck", "open the top drawer now", ""], CFG)
    out = encoder(ids)
    assert out.shape == (3, 48) and torch.isfinite(out).all()
    # padding does not change a row's embedding
    alone = encoder(tokenize(["push the puck"], CFG))
    torch.testing.assert_close(out[:1], alone)
    assert not torch.allclose(out[0], out[1])
