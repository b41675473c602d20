"""The dataset format (LeRobot v3 layout): writer, reader, integrity check, training loaders."""

from wam.data.episode import Episode
from wam.data.layout import ACTION_KEY, IMAGE_PREFIX, STATE_KEY, Feature
from wam.data.reader import Dataset, EpisodeInfo
from wam.data.video import VideoConfig
from wam.data.writer import DatasetWriter, StagedEpisode, stage_episode
from wam.errors import DatasetError

__all__ = [
    "ACTION_KEY", "IMAGE_PREFIX", "STATE_KEY", "Dataset", "DatasetError", "DatasetWriter", "Episode",
    "EpisodeInfo", "Feature", "StagedEpisode", "VideoConfig", "stage_episode",
]
