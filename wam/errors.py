"""Errors of our own, raised at the boundary with a message naming the file, field or value."""


class WamError(Exception):
    """Base class: anything wam refuses with a message meant for the user."""


class DatasetError(WamError):
    """A dataset on disk is missing, malformed, or asked for something it cannot give."""


class CheckpointError(WamError):
    """A checkpoint is missing, malformed, or does not fit the model it is loaded into."""
