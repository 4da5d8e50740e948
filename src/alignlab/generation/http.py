"""Completions from an OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp, TGI, OpenAI,
`alignlab serve`), behind the `Generator` protocol.

One POST to `{base_url}/chat/completions` per prompt asks for all `n` completions (`n`,
`temperature`, `top_p`, `max_tokens`, `stop`, `seed`; `top_k` only when set, as vLLM and
llama.cpp accept it). With `logprobs=True` (the default) each token's log-prob is asked for, and
`SamplingParams.top_logprobs` > 0 asks for the most likely tokens at each position: an AI judge
reads P("A") vs P("B") from the first one. Endpoints report log-probs but not token ids, so
`Completion.token_ids` is empty.

Requests run on `concurrency` threads. A connection error, a timeout, 429 or 5xx is retried
`max_retries` times with exponential backoff and jitter (honouring `Retry-After`); a request that
still fails, or that the endpoint rejects (400, 422), gives completions with finish_reason "error",
so an eval records it and goes on. Errors no retry can fix stop the run with one clear line
(`EndpointError`): no connection at all before any request got through, a refused API key (401,
403), an unknown route or model (404). With `cache_dir`, every successful response is stored
under a hash of the URL and the request body (model, messages, sampling params, tools): a re-run
sends nothing. Writes are atomic, so an interrupted run leaves no broken entry.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from alignlab.data.schema import Message
from alignlab.errors import AlignlabError
from alignlab.generation.base import Completion, Prompt, SamplingParams
from alignlab.io import atomic_write_json

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(AlignlabError):
    """The endpoint cannot serve any request: unreachable, wrong API key, unknown route or model."""


class _Failed(Exception):
    """One request failed after its retries (becomes error completions)."""

    def __init__(self, message: str, connection: bool = False) -> None:
        super().__init__(message)
        self.connection = connection


def openai_message(m: Message | Mapping[str, Any]) -> dict[str, Any]:
    """A conversation turn in the OpenAI request shape (tool-call arguments as JSON text)."""
    if not isinstance(m, Message):
        return dict(m)
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        d["tool_calls"] = [
            {
                "id": c.id or f"call_{i}",
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments),
                },
            }
            for i, c in enumerate(m.tool_calls)
        ]
    if m.tool_call_id is not None:
        d["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        d["name"] = m.name
    return d


class ResponseCache:
    """Successful responses on disk, one JSON file per request, keyed by URL and request body."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(url: str, body: Mapping[str, Any]) -> str:
        text = json.dumps({"url": url, "body": body}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, response: dict[str, Any]) -> None:
        atomic_write_json(self._path(key), response, indent=0)


class HTTPGenerator:
    """`Generator` over an OpenAI-compatible endpoint; `base_url` ends with the API root (".../v1")."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        concurrency: int = 8,
        cache_dir: str | Path | None = None,
        logprobs: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.concurrency = concurrency
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.logprobs = logprobs
        self.extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )  # fmt: skip
        self._reached = threading.Event()  # set once any request got an HTTP answer
        self._count_lock = threading.Lock()
        self.requests_sent = 0  # HTTP requests made, retries included (cache hits make none)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HTTPGenerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[list[Completion]]:
        """`params.n` completions per conversation, in prompt order; raises `EndpointError` (see module)."""
        bodies = [self.request_body(p, params, tools) for p in prompts]
        if len(bodies) <= 1:
            return [self._complete(b, params) for b in bodies]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies)))
        try:
            return list(pool.map(lambda b: self._complete(b, params), bodies))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # after an EndpointError, send nothing more

    def request_body(
        self, prompt: Prompt, params: SamplingParams, tools: Sequence[Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The JSON body of one chat-completions request."""
        body: dict[str, Any] = {
            "model": self.model, "messages": [openai_message(m) for m in prompt], "n": params.n,
            "max_tokens": params.max_new_tokens, "temperature": params.temperature, "top_p": params.top_p,
            "seed": params.seed,
        }  # fmt: skip
        if params.stop:
            body["stop"] = list(params.stop)
        if params.top_k is not None:
            body["top_k"] = params.top_k
        if self.logprobs or params.top_logprobs:
            body["logprobs"] = True
        if params.top_logprobs:
            body["top_logprobs"] = params.top_logprobs
        if tools:
            body["tools"] = list(tools)
        return {**body, **self.extra_body}

    def _complete(self, body: dict[str, Any], params: SamplingParams) -> list[Completion]:
        key = ResponseCache.key(self.url, body) if self.cache else None
        response = self.cache.get(key) if self.cache else None
        if response is None:
            try:
                response = self._post(body)
            except _Failed as e:
                if e.connection and not self._reached.is_set():
                    raise EndpointError(
                        f"cannot connect to {self.url} ({e}): start the server or fix the URL"
                    ) from None
                return [Completion("", finish_reason="error", error=str(e))] * params.n
        try:
            completions = parse_response(response, params)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            return [
                Completion("", finish_reason="error", error=f"malformed response from {self.url}: {e!r}")
            ] * params.n
        if self.cache and not any(c.failed for c in completions):
            self.cache.put(key, response)
        return completions

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries; the parsed JSON of a 200 answer, else `_Failed` or `EndpointError`."""
        for attempt in range(self.max_retries + 1):
            wait = None
            with self._count_lock:
                self.requests_sent += 1
            try:
                r = self._client.post(self.url, json=body)
            except httpx.TransportError as e:
                failure = _Failed(f"{type(e).__name__}: {e}", connection=isinstance(e, httpx.ConnectError))
            else:
                self._reached.set()
                if r.status_code == 200:
                    try:
                        return r.json()
                    except ValueError:
                        raise _Failed(f"HTTP 200 with a body that is not JSON: {r.text[:200]!r}") from None
                message = f"HTTP {r.status_code}: {_error_message(r)}"
                if r.status_code in (401, 403):
                    raise EndpointError(f"{self.url} refused the request ({message}): check the API key")
                if r.status_code == 404:
                    raise EndpointError(
                        f"{self.url} answered {message}: check that the URL ends with the API "
                        f"root (e.g. /v1) and that the endpoint serves model {self.model!r}"
                    )
                if r.status_code not in RETRY_STATUS:
                    raise _Failed(message)
                failure, wait = _Failed(message), _retry_after(r)
            if attempt < self.max_retries:
                time.sleep(self._delay(attempt, wait))
        raise failure

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)


def parse_response(response: Mapping[str, Any], params: SamplingParams) -> list[Completion]:
    """`params.n` completions from a chat-completions response; missing choices are errors."""
    choices = sorted(response["choices"], key=lambda c: c.get("index", 0))[: params.n]
    out = [_parse_choice(c, params.top_logprobs > 0) for c in choices]
    missing = Completion(
        "", finish_reason="error", error=f"the endpoint returned {len(choices)} of {params.n} choices"
    )
    return out + [missing] * (params.n - len(out))


def _parse_choice(choice: Mapping[str, Any], want_top: bool) -> Completion:
    text = (choice.get("message") or {}).get("content") or ""
    finish = "length" if choice.get("finish_reason") == "length" else "stop"
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return Completion(text.strip(), finish_reason=finish)
    logprobs = tuple(float(t["logprob"]) for t in content)
    top = None
    if want_top:
        top = tuple(_top_dict(t.get("top_logprobs") or []) for t in content)
    return Completion(text.strip(), (), logprobs, finish, None, top)


def _top_dict(entries: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for e in sorted(entries, key=lambda e: -float(e["logprob"])):
        out.setdefault(e["token"], float(e["logprob"]))  # tokens that read alike keep the likeliest
    return out


def _error_message(r: httpx.Response) -> str:
    """The message of an OpenAI-style error body ({"error": {"message"}}), FastAPI's detail, or the text."""
    try:
        data = r.json()
    except ValueError:
        return r.text[:200] or r.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data.get("detail"))
        if isinstance(err, dict):
            return str(err.get("message", err))[:200]
        if err is not None:
            return str(err)[:200]
    return str(data)[:200]


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return max(0.0, float(r.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def served_models(
    base_url: str, *, api_key: str | None = None, timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> list[str]:  # fmt: skip
    """The model names an endpoint lists at `{base_url}/models` (OpenAI's `{"data": [{"id": ...}]}`).

    No connection, a refused key, no such route or no model listed is an `EndpointError` saying what to do.
    """
    r = _get_models(base_url, api_key, timeout, transport)
    try:
        r.raise_for_status()
        names = [str(m["id"]) for m in r.json()["data"]]
        if names:
            return names
    except (httpx.HTTPStatusError, ValueError, KeyError, TypeError):
        pass
    raise EndpointError(
        f"{r.url} does not list its models (HTTP {r.status_code}): check that the URL ends with the API "
        "root (e.g. /v1), or name the model (endpoint.model, --model-name)"
    )


def check_reachable(
    base_url: str, *, api_key: str | None = None, timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> None:  # fmt: skip
    """Fail now, with one clear `EndpointError`, when nothing answers at `base_url` or the key is refused
    (one GET of `{base_url}/models`; any other answer, 404 included, will do)."""
    _get_models(base_url, api_key, timeout, transport)


def _get_models(base_url: str, api_key: str | None, timeout: float, transport) -> httpx.Response:
    url = base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(headers=headers, timeout=timeout, transport=transport) as client:
            r = client.get(url)
    except httpx.TransportError as e:
        why = f"{type(e).__name__}: {e}"
        raise EndpointError(f"cannot connect to {url} ({why}): start the server or fix the URL") from None
    if r.status_code in (401, 403):
        why = f"HTTP {r.status_code}: {_error_message(r)}"
        raise EndpointError(f"{url} refused the request ({why}): check the API key")
    return r
