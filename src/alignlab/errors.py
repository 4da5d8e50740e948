"""Errors a user can cause.

Every subclass message names the file and line, or the config key, and says what to do. The CLI
prints the message as one line without a traceback and exits with status 2.
"""

from __future__ import annotations


class AlignlabError(Exception):
    """Base class for user-facing errors (bad input, bad config, missing files)."""

    exit_code = 2


class ConfigError(AlignlabError):
    """A config key is unknown, has the wrong type or value, or a referenced file is missing."""


class DataError(AlignlabError):
    """A dataset file or record is malformed; the message names `file:line`."""


class ModelLoadError(AlignlabError):
    """A model or tokenizer cannot be loaded from the given directory or hub id."""


class TrainingError(AlignlabError):
    """Training stopped (e.g. non-finite loss); the message says where the last good checkpoint is."""


class PipelineError(AlignlabError):
    """A recipe is malformed: unknown stage kind, missing input, dependency cycle."""


class RewardError(AlignlabError):
    """A reward stopped the run: its function raised, or returned the wrong number of scores or
    non-finite ones; the message names the reward."""
