"""The feature spec read from the data, the time base, the image fit and the statistics' checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wam.data.fit import fit_frames
from wam.data.spec import FeatureSpec, frame_strides, parse_cameras, read_spec
from wam.data.stats import dataset_feature_stats
from wam.errors import DatasetError

from tests.support.lerobot_like import write_lerobot_dataset


def small(root, **changes):
    spec = dict(cameras={"observation.images.top": (48, 48)}, state_dim=6, action_dim=6, fps=30, episodes=2, length=8)
    return write_lerobot_dataset(root, **{**spec, **changes})


def test_the_spec_is_read_from_info_json_and_round_trips(tmp_path):
    data = small(tmp_path / "d", cameras={"observation.images.wrist": (48, 64), "observation.images.top": (48, 48)})
    spec = read_spec([data])
    assert spec.views == ("wrist", "top")  # info.json order
    assert spec.image_sizes[str(data)] == ((48, 64), (48, 48))
    assert (spec.state_dim, spec.action_dim, spec.fps[str(data)]) == (6, 6, 30.0)
    assert spec.reward_keys[str(data)] == "next.reward" and spec.success_keys[str(data)] == "next.success"
    assert spec.state_names is not None and len(spec.state_names) == 6
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert read_spec([data], parse_cameras("top")).camera_keys[str(data)] == ("observation.images.top",)


def test_mismatches_are_named(tmp_path):
    a = small(tmp_path / "a")
    b = small(tmp_path / "b", state_dim=7, action_dim=7)
    with pytest.raises(DatasetError, match=r"size of 'observation.state'.*6.*7"):
        read_spec([a, b])
    with pytest.raises(DatasetError, match="has no camera 'wrist'.*observation.images.top"):
        read_spec([a], ("wrist",))
    with pytest.raises(ValueError, match="twice"):
        parse_cameras("top,top")
    two = small(tmp_path / "two", cameras={"observation.images.top": (48, 48), "observation.images.wrist": (48, 48)})
    with pytest.raises(DatasetError, match="different cameras"):
        read_spec([a, two])
    # single-camera datasets share slot 0 whatever the camera is called
    c = small(tmp_path / "c", cameras={"observation.images.front": (48, 48)})
    assert read_spec([a, c]).num_views == 1


def test_frame_rates_share_one_time_base_in_seconds(tmp_path):
    slow, fast = small(tmp_path / "slow", fps=10), small(tmp_path / "fast", fps=50)
    spec = read_spec([slow, fast])
    with pytest.raises(DatasetError, match="different frame rates.*--frame-seconds"):
        frame_strides(spec, 2, None)
    assert frame_strides(spec, 2, 0.1) == {str(slow): 1, str(fast): 5}
    with pytest.raises(DatasetError, match="longer than the model's frame interval"):
        frame_strides(spec, 2, 0.02)
    same = read_spec([slow, small(tmp_path / "slow2", fps=10)])
    assert set(frame_strides(same, 3, None).values()) == {3}


@pytest.mark.parametrize("mode", ["pad", "crop", "stretch"])
def test_fit_brings_any_frame_to_the_square_resolution(mode):
    frames = np.zeros((2, 48, 96, 3), np.uint8)
    frames[:, :, :48] = 200  # the left half bright
    out = fit_frames(frames, 32, mode)
    assert out.shape == (2, 32, 32, 3) and out.dtype == np.uint8
    if mode == "pad":  # nothing lost: the whole width fits, black bars above and below
        assert out[:, 0].max() == 0 and out[:, 16, 2].min() > 150 and out[:, 16, -2].max() < 50
    if mode == "crop":  # the centre: half bright, half dark
        assert out[:, 16, 2].min() > 150 and out[:, 16, -2].max() < 50 and out[:, 0, 2].min() > 150
    square = np.full((1, 32, 32, 3), 7, np.uint8)
    assert fit_frames(square, 32, mode) is square
    with pytest.raises(ValueError, match="pad, crop, stretch"):
        fit_frames(frames, 32, "squash")


def test_statistics_with_nan_or_no_variance_are_refused(tmp_path):
    data = small(tmp_path / "d")
    stats = dataset_feature_stats([data], "action")
    assert stats.mean.shape == (6,) and np.all(stats.std > 0)
    path = data / "meta" / "stats.json"
    saved = json.loads(path.read_text())
    broken = json.loads(json.dumps(saved))
    broken["action"]["std"][2] = float("nan")
    path.write_text(json.dumps(broken).replace("NaN", "NaN"))
    with pytest.raises(DatasetError, match=r"stats.json: action std is nan at dimension 2"):
        dataset_feature_stats([data], "action")
    flat = json.loads(json.dumps(saved))
    flat["action"]["std"] = [0.0] * 6
    flat["action"]["max"] = flat["action"]["min"]
    path.write_text(json.dumps(flat))
    with pytest.raises(DatasetError, match="zero variance in every dimension"):
        dataset_feature_stats([data], "action")
    path.unlink()  # no stats file: computed from the frames, the same numbers
    computed = dataset_feature_stats([data], "action")
    np.testing.assert_allclose(computed.mean, stats.mean, rtol=1e-4, atol=1e-5)
    assert "computed from the frames" in computed.source


def test_data_info_reads_success_from_lerobot_next_fields(tmp_path):
    from wam.data import Dataset
    from wam.data.summary import dataset_summary

    data = small(tmp_path / "d", image_storage="image")
    summary = dataset_summary(Dataset(data))
    assert summary["success_rate"] is not None
    assert summary["cameras"] == {"observation.images.top": "image 48x48"}
    assert summary["reward_fields"] == ["next.reward", "next.success", "next.done"]
