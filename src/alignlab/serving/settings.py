"""The server's options, checked once (a bad value is a `ConfigError` naming the option)."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.errors import ConfigError


@dataclass(frozen=True)
class ServerSettings:
    """How the server answers; model loading (device, dtype) is `create_app`'s business."""

    api_key: str | None = None  # when set, /v1 routes need "Authorization: Bearer <api_key>"
    model_name: str | None = None  # the id clients send as `model`; default: the model directory's name
    max_batch_rows: int = 64  # rows (requests × n) decoded together
    batch_window_ms: float = 5.0  # a batch waits for more requests while they arrive less than this apart
    max_queue: int = 256  # requests waiting for the worker; more are answered 429
    request_timeout_s: float = 600.0  # a request still unanswered after this is answered 504
    default_max_tokens: int = 512  # reply length when a request gives no max_tokens

    def __post_init__(self) -> None:
        checks = {
            "max_batch_rows": self.max_batch_rows >= 1,
            "batch_window_ms": self.batch_window_ms >= 0,
            "max_queue": self.max_queue >= 1,
            "request_timeout_s": self.request_timeout_s > 0,
            "default_max_tokens": self.default_max_tokens >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"server option '{name}' cannot be {getattr(self, name)!r}: give a positive value"
                )
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("server option 'api_key' is empty: give a key, or none to serve without one")
