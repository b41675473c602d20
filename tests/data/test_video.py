"""Guards wam.data.video: mp4 encode/decode quality, windowed decoding by seeking, and its errors.

A window read must give exactly the frames a whole decode gives (seeking to the keyframe
before `start`, across GOP boundaries and up to the last frame), and every failure must be
refused: DatasetError naming the file for reads, ValueError for frames H.264 cannot take.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from wam.data.video import VideoConfig, count_frames, decode_video, encode_video
from wam.errors import DatasetError

FPS = 30
LENGTH = 40  # five GOPs of 8 frames with the default VideoConfig


@pytest.fixture(scope="module")
def clip(tmp_path_factory, synth):
    frames = synth.make_frames(LENGTH, size=64, seed=5)
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    encode_video(frames, path, FPS)
    return path, frames, decode_video(path, FPS)


def test_default_config_is_h264_full_chroma_with_short_gop():
    config = VideoConfig()
    assert (config.codec, config.pix_fmt) == ("libx264", "yuv444p")
    assert config.gop == 8  # the window tests below rely on several keyframes in LENGTH frames


def test_round_trip_psnr(clip, synth):
    path, frames, decoded = clip
    assert decoded.dtype == np.uint8
    assert decoded.shape == frames.shape
    assert synth.psnr(frames, decoded) >= 35.0
    # every frame on its own, not only on average
    assert min(synth.psnr(frames[t], decoded[t]) for t in range(LENGTH)) >= 30.0
    assert count_frames(path) == (LENGTH, (64, 64))


def test_round_trip_psnr_small_frames(tmp_path, synth):
    frames = synth.make_frames(24, size=32, seed=2)
    path = tmp_path / "small.mp4"
    encode_video(frames, path, 10)
    assert synth.psnr(frames, decode_video(path, 10)) >= 35.0


@pytest.mark.parametrize(
    "start,count",
    [
        (0, 1), (0, 8), (1, 5), (6, 5),  # first GOP, and across the keyframe at 8
        (7, 2), (8, 1), (8, 8), (9, 10),  # at/after a keyframe, across two GOPs
        (15, 3), (16, 1), (23, 9), (31, 2),
        (LENGTH - 9, 9), (LENGTH - 3, 3), (LENGTH - 1, 1),  # the last frames
        (0, LENGTH),
    ],
)
def test_window_equals_slice_of_whole_decode(clip, start, count):
    path, _, whole = clip
    window = decode_video(path, FPS, start, count)
    assert window.shape == (count, 64, 64, 3)
    np.testing.assert_array_equal(window, whole[start : start + count])


@pytest.mark.parametrize("start", [0, 5, 8, 33, LENGTH - 1])
def test_open_ended_window_runs_to_the_end(clip, start):
    path, _, whole = clip
    np.testing.assert_array_equal(decode_video(path, FPS, start), whole[start:])


@pytest.mark.parametrize("start,count", [(LENGTH - 2, 5), (LENGTH - 1, 2), (0, LENGTH + 1), (LENGTH, 1), (LENGTH + 10, 3)])
def test_window_past_the_end_names_the_file(clip, start, count):
    path = clip[0]
    with pytest.raises(DatasetError) as excinfo:
        decode_video(path, FPS, start, count)
    assert str(path) in str(excinfo.value)


def test_start_past_the_end_without_count_names_the_file(clip):
    path = clip[0]
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        decode_video(path, FPS, LENGTH + 2)


def test_negative_start_refused(clip):
    with pytest.raises(ValueError):
        decode_video(clip[0], FPS, -1, 2)


@pytest.mark.parametrize("height,width", [(33, 32), (32, 31), (31, 33)])
def test_odd_frame_sizes_rejected(tmp_path, height, width):
    frames = np.zeros((4, height, width, 3), np.uint8)
    path = tmp_path / "odd.mp4"
    with pytest.raises(ValueError, match="even"):
        encode_video(frames, path, FPS)
    assert not path.exists()


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((4, 32, 32, 3), np.float32),  # not uint8
        np.zeros((4, 32, 32), np.uint8),  # no channel axis
        np.zeros((4, 32, 32, 4), np.uint8),  # RGBA
        np.zeros((0, 32, 32, 3), np.uint8),  # empty
    ],
    ids=["float", "gray", "rgba", "empty"],
)
def test_malformed_frames_rejected(tmp_path, frames):
    with pytest.raises(ValueError):
        encode_video(frames, tmp_path / "bad.mp4", FPS)


def test_unreadable_files_name_the_file(tmp_path):
    missing = tmp_path / "missing.mp4"
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not an mp4 at all" * 64)
    for path in (missing, garbage):
        with pytest.raises(DatasetError, match=re.escape(str(path))):
            decode_video(path, FPS)
        with pytest.raises(DatasetError, match=re.escape(str(path))):
            count_frames(path)


def test_truncated_file_is_detected(clip, tmp_path):
    path = tmp_path / "truncated.mp4"
    payload = clip[0].read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    try:
        n, _ = count_frames(path)
    except DatasetError as err:
        assert str(path) in str(err)
    else:
        assert n < LENGTH
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        decode_video(path, FPS, 0, LENGTH)
