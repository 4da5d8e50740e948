"""OpenAI-style errors: every failure answers `{"error": {"message", "type", "param", "code"}}`.

Status codes follow OpenAI's API: 400 for a request that is malformed or asks for something not
supported (request validation included, with `param` naming the field), 401 for a missing or
wrong API key, 404 for an unknown model or route, 429 when the request queue is full (with
`Retry-After`), 500 when generation fails, 503 while the server shuts down or has lost its
generation worker, 504 when a request outlives the per-request timeout. Clients (the official
`openai` library, `alignlab.generation.http`) retry 429 and 5xx, not 4xx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class APIError(Exception):
    """An error answered to the client in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def invalid_api_key() -> APIError:
    # OpenAI answers a wrong key with this type and code; `WWW-Authenticate` is HTTP's own hint.
    return APIError(401, "Incorrect or missing API key: send it as 'Authorization: Bearer <key>'",
                    code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


def queue_full(size: int) -> APIError:
    return APIError(429, f"the server's request queue is full ({size} requests waiting); retry later",
                    type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"})  # fmt: skip


def shutting_down() -> APIError:
    return APIError(503, "the server is shutting down", type="server_error", code="shutting_down")


def worker_stopped() -> APIError:
    return APIError(503, "the generation worker has stopped (see the server log); restart the server",
                    type="server_error", code="overloaded")  # fmt: skip


def timed_out(seconds: float) -> APIError:
    return APIError(504, f"the request did not finish within the server's {seconds:g} s request timeout",
                    type="timeout_error", code="request_timeout")  # fmt: skip


def generation_failed(err: BaseException) -> APIError:
    return APIError(
        500, f"generation failed: {type(err).__name__}: {err}", type="server_error", code="generation_failed"
    )


_CODES = {
    "missing": "missing_required_parameter",
    "extra_forbidden": "unknown_parameter",
    "json_invalid": "invalid_json",
}


def from_validation(errors: Sequence[Mapping[str, Any]]) -> APIError:
    """A 400 naming the first invalid field of a request body (pydantic's / FastAPI's error list)."""
    if not errors:
        return bad_request("invalid request body")
    first = errors[0]
    loc = [p for p in first.get("loc", ()) if p != "body"]
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return bad_request("the request body is not valid JSON", None, "invalid_json")
    message = str(first.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        message = "unrecognised request argument; this server takes the parameters listed in docs/serving.md"
    elif kind == "missing" and not loc:
        message = "the request needs a JSON body"
    code = _CODES.get(kind, "invalid_type" if kind.endswith("_type") else "invalid_value")
    return bad_request(f"{param}: {message}" if param else message, param, code)
