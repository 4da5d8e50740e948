"""Errors of the labelling app, each with the HTTP status the web pages answer with.

They are `AlignlabError`s, so the command line prints them as one line and exits 2 as well.
"""

from __future__ import annotations

from alignlab.errors import AlignlabError


class LabellingError(AlignlabError):
    """A request the app refuses; `status_code` is what the web server answers."""

    status_code = 400


class NotAuthenticated(LabellingError):
    status_code = 401


class Forbidden(LabellingError):
    status_code = 403


class NotFound(LabellingError):
    status_code = 404


class Conflict(LabellingError):
    status_code = 409


class Invalid(LabellingError):
    status_code = 422


class TooManyAttempts(LabellingError):
    status_code = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
