"""The project's exception types: every failure a user can cause raises one of these.

The CLI prints the message of a :class:`VtrError` on one line, without a traceback, and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path


class VtrError(Exception):
    """Base class of every error a user can cause (bad path, bad file, bad config, missing package)."""


class VideoDecodeError(VtrError):
    """A video file cannot be read: missing, empty, not a video, audio only, truncated, unreadable.

    Args:
        path: the file that failed.
        cause: what went wrong, in words a user can act on.
    """

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"cannot decode video {self.path}: {cause}")


class DataFormatError(VtrError):
    """A data set folder or its annotations file does not follow the expected format."""


class ConfigError(VtrError):
    """A configuration file or a ``--set key=value`` override is invalid."""


class TaggerUnavailableError(VtrError):
    """No spaCy English pipeline is installed."""


class CheckpointError(VtrError):
    """A run folder or checkpoint is missing, incomplete or was written by an incompatible version."""


class IndexStoreError(VtrError):
    """A search index is missing, corrupt, or cannot answer the request."""


class ModelMismatchError(IndexStoreError):
    """A query was made with a different model than the one that built the index."""
