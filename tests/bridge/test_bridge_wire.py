"""The bridge's binary frames (wam/bridge/wire.py): arrays come back bit for bit, and every torn or lying frame is a WireError."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from wam.bridge.wire import MAX_HEADER_BYTES, WireError, pack, peek, unpack


def _frame(header, body: bytes = b"") -> bytes:
    """A frame with a hand-written header, for the lies `pack` would never tell."""
    head = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<I", len(head)) + head + body


def test_arrays_of_every_allowed_dtype_and_shape_round_trip():
    rng = np.random.default_rng(0)
    arrays = {
        "image.front": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        "state": rng.normal(size=7).astype(np.float32),
        "wide": rng.normal(size=(2, 3)),  # float64
        "ids": np.array([-(2**62), 0, 2**62], dtype=np.int64),
        "mask": np.array([[True, False], [False, True]]),
        "scalar": np.float32(1.5) * np.ones((), np.float32),
        "nothing": np.zeros((0, 3), np.float32),
        "strided": np.arange(20, dtype=np.float64)[::2],  # not contiguous: packed as a copy
    }
    header, out = unpack(pack({"type": "observation", "id": 7, "reward": 0.25}, arrays))
    assert header == {"type": "observation", "id": 7, "reward": 0.25}  # the layout is popped
    assert list(out) == list(arrays)
    for name, array in arrays.items():
        assert out[name].dtype == array.dtype and out[name].shape == array.shape, name
        np.testing.assert_array_equal(out[name], array)


def test_a_frame_without_arrays_and_empty_arrays_at_the_end():
    header, arrays = unpack(pack({"type": "heartbeat"}))
    assert header == {"type": "heartbeat"} and arrays == {}
    header, arrays = unpack(pack({"type": "x"}, {"a": np.ones(2, np.uint8), "b": np.zeros(0, np.int64)}))
    assert arrays["a"].tolist() == [1, 1] and arrays["b"].shape == (0,) and arrays["b"].dtype == np.int64


def test_big_endian_arrays_arrive_with_their_values():
    values = np.array([1.0, -2.5, 3.25], dtype=">f4")
    _, arrays = unpack(pack({}, {"state": values}))
    assert arrays["state"].tolist() == [1.0, -2.5, 3.25]


def test_peek_reads_the_header_alone():
    frame = pack({"type": "step", "id": 3}, {"action": np.zeros(4, np.float32)})
    header = peek(frame)
    assert header["type"] == "step" and header["id"] == 3
    assert header["arrays"] == [{"name": "action", "dtype": "float32", "shape": [4]}]


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex64", "uint16"])
def test_pack_refuses_dtypes_off_the_list(dtype):
    with pytest.raises(WireError, match=f"'bad' has dtype {dtype}"):
        pack({}, {"bad": np.zeros(2, dtype)})


def test_pack_refuses_objects():
    with pytest.raises(WireError, match="dtype object"):
        pack({}, {"bad": np.array([None, 1], dtype=object)})


@pytest.mark.parametrize("frame, message", [
    (b"", "0 bytes is too short"),
    (b"\x05\x00\x00", "3 bytes is too short"),
    (struct.pack("<I", 100) + b'{"a": 1}', "header of 100 bytes does not fit the frame of 12"),
    (struct.pack("<I", MAX_HEADER_BYTES + 1) + b"x" * (MAX_HEADER_BYTES + 1), "does not fit"),
    (_frame(b"{not json"), "header is not JSON"),
    (_frame(b"\xff\xfe"), "header is not JSON"),
    (_frame([1, 2]), "header must be a JSON object"),
    (_frame('"text"'.encode()), "header must be a JSON object"),
])
def test_torn_or_lying_headers_are_wire_errors(frame, message):
    with pytest.raises(WireError, match=message):
        peek(frame)
    with pytest.raises(WireError, match=message):
        unpack(frame)


@pytest.mark.parametrize("arrays, body, message", [
    ("nope", b"", "'arrays' list"),
    ([{"name": "a", "dtype": "float32", "shape": [4]}], b"\x00" * 15, "'a' needs 16 bytes; 15 are left"),
    ([{"name": "a", "dtype": "uint8", "shape": [2]}, {"name": "b", "dtype": "float64", "shape": [1]}], b"\x00" * 9,
     "'b' needs 8 bytes; 7 are left"),
    ([{"name": "a", "dtype": "uint8", "shape": [2**32, 2**32]}], b"", "'a' needs"),  # the size overflows int64
    ([{"name": "a", "dtype": "uint8", "shape": [2]}], b"\x00" * 5, "3 bytes after its arrays"),
    ([], b"\x00", "1 bytes after its arrays"),
    ([{"name": "a", "dtype": "float16", "shape": [1]}], b"\x00" * 2, "dtype float16 .* not allowed"),
    ([{"name": "a", "dtype": "object", "shape": [1]}], b"\x00" * 8, "not allowed"),
    ([{"name": "a", "dtype": "uint8", "shape": [-1]}], b"", "shape \\(-1,\\) not allowed"),
    ([{"name": "a", "dtype": "no-such-type", "shape": [1]}], b"\x00", "malformed"),
    ([{"name": "a", "shape": [1]}], b"\x00", "malformed"),
    ([{"name": "a", "dtype": "uint8", "shape": 3}], b"\x00" * 3, "malformed"),
    ([5], b"", "malformed"),
])
def test_frames_whose_arrays_do_not_fit_are_wire_errors(arrays, body, message):
    with pytest.raises(WireError, match=message):
        unpack(_frame({"type": "step", "arrays": arrays}, body))


def test_an_appended_byte_is_caught_on_a_real_frame():
    frame = pack({"type": "step"}, {"action": np.zeros(4, np.float32)})
    assert unpack(frame)[1]["action"].shape == (4,)
    with pytest.raises(WireError, match="1 bytes after"):
        unpack(frame + b"\x00")
    with pytest.raises(WireError, match="needs 16 bytes; 15 are left"):
        unpack(frame[:-1])
