"""The bridge's messages: a JSON header and raw arrays in one binary frame.

A camera frame at 480x640 is 900 KB raw; as JSON numbers it would be several MB and slow to
parse on a robot's small computer, and PNG costs tens of milliseconds a frame. So each message
is `[4-byte header length][JSON header][array bytes ...]`, the header listing every array's
name, dtype and shape. Only the standard library and numpy: the bridge runs next to the robot
with nothing of wam's training stack installed.
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np

MAX_HEADER_BYTES = 1 << 20
ALLOWED_DTYPES = ("uint8", "float32", "float64", "int64", "bool")


class WireError(ValueError):
    """A frame that is not a bridge message (torn, too short, or with a header that lies about its arrays)."""


def pack(header: dict, arrays: dict[str, np.ndarray] | None = None) -> bytes:
    arrays = arrays or {}
    layout, blobs = [], []
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.name not in ALLOWED_DTYPES:
            raise WireError(f"array {name!r} has dtype {array.dtype}; send one of {', '.join(ALLOWED_DTYPES)}")
        array = np.require(array, array.dtype.newbyteorder("<"), "C")  # the bytes the header's dtype names; 0-d stays 0-d
        layout.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape)})
        blobs.append(array.tobytes())
    head = json.dumps({**header, "arrays": layout}, allow_nan=False).encode()
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def unpack(frame: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and the arrays of a frame; WireError saying what is wrong with a bad one."""
    header = peek(frame)
    if not isinstance(header.get("arrays", []), list):
        raise WireError("bridge frame header must be a JSON object with an 'arrays' list")
    arrays, offset = {}, 4 + struct.unpack_from("<I", frame)[0]
    for item in header.pop("arrays", []):
        try:
            dtype, shape, name = np.dtype(item["dtype"]), tuple(int(n) for n in item["shape"]), str(item["name"])
        except (KeyError, TypeError, ValueError) as error:
            raise WireError(f"bridge frame array entry {item!r} is malformed: {error}") from None
        if dtype.name not in ALLOWED_DTYPES or any(n < 0 for n in shape):
            raise WireError(f"bridge frame array {name!r}: dtype {dtype} or shape {shape} not allowed")
        size = dtype.itemsize * math.prod(shape)  # Python ints: a lying shape cannot overflow to a small size
        if offset + size > len(frame):
            raise WireError(f"bridge frame array {name!r} needs {size} bytes; {len(frame) - offset} are left")
        arrays[name] = np.frombuffer(frame, dtype, count=size // dtype.itemsize, offset=offset).reshape(shape)
        offset += size
    if offset != len(frame):
        raise WireError(f"bridge frame has {len(frame) - offset} bytes after its arrays")
    return header, arrays


def peek(frame: bytes) -> dict:
    """The header alone (without its arrays), for relays that route a frame without reading it."""
    if len(frame) < 4:
        raise WireError(f"a bridge frame of {len(frame)} bytes is too short")
    (length,) = struct.unpack_from("<I", frame)
    if length > MAX_HEADER_BYTES or 4 + length > len(frame):
        raise WireError(f"bridge frame header of {length} bytes does not fit the frame of {len(frame)}")
    try:
        header = json.loads(frame[4:4 + length])
    except ValueError as error:
        raise WireError(f"bridge frame header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise WireError("bridge frame header must be a JSON object")
    return header
