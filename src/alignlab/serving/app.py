"""The FastAPI app: `/v1/chat/completions` (whole or streamed), `/v1/models`, `/health`.

A request is validated (`protocol`), rendered with the model's own chat template
(`data.templating.encode_prompt`, tools included) and queued for the generation worker
(`engine`); its handler waits for the completions, or streams them as server-sent events in
OpenAI's chunk format, ending with `data: [DONE]`. Everything that touches the tokenizer on the
request side runs on the event loop thread, with a tokenizer of its own: the worker's is never
shared across threads (a fast tokenizer used from two threads at once can fail).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from alignlab.data.templating import encode_prompt
from alignlab.errors import DataError
from alignlab.generation.base import SamplingParams
from alignlab.generation.collect import TokenEvent
from alignlab.generation.decode import max_positions
from alignlab.generation.hf import HFGenerator
from alignlab.generation.replies import top_dict
from alignlab.serving.engine import Engine, Job
from alignlab.serving.errors import APIError, bad_request, from_validation, invalid_api_key, timed_out
from alignlab.serving.protocol import ChatCompletionRequest
from alignlab.serving.responses import DONE, ResponseMaker, error_event, logprob_entries, token_texts
from alignlab.serving.settings import ServerSettings
from alignlab.serving.stream import TextStream

router = APIRouter()
MAX_BODY_BYTES = 32 * 2**20  # a request body larger than this is refused (413) before it is parsed
MAX_TOKENS_WITHOUT_CONTEXT = 32768  # reply cap for a model whose config gives no context length


class _Sink:
    """A job's results, handed from the worker thread to the request's handler on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stream: bool) -> None:
        self.loop, self.stream = loop, stream
        self.queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def _put(self, item: tuple[Any, ...]) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop has closed: no one is waiting any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def token(self, sample: int, event: TokenEvent) -> None:
        if self.stream:
            self._put(("token", sample, event))

    def done(self, completions) -> None:
        self._put(("done", completions))

    def failed(self, error: APIError) -> None:
        self._put(("error", error))


@dataclass
class ServingState:
    engine: Engine
    tokenizer: Any  # the request side's own tokenizer (event loop thread only)
    model_name: str
    settings: ServerSettings
    context: int | None  # the model's context length, when its config says
    created: int

    def prepare(self, body: ChatCompletionRequest) -> tuple[list[int], SamplingParams]:
        """The prompt's token ids and the sampling settings of a validated request; 400 when unusable."""
        try:
            ids = encode_prompt(self.tokenizer, body.conversation(), body.tool_schemas())
        except (DataError, ValidationError, ValueError) as err:
            raise bad_request(f"messages: {err}", "messages") from None
        if not ids:
            raise bad_request("messages: the conversation renders to no tokens", "messages")
        room = MAX_TOKENS_WITHOUT_CONTEXT if self.context is None else self.context - len(ids)
        if room < 1:
            raise bad_request(
                f"messages: the prompt has {len(ids)} tokens but the model's context is {self.context}: "
                "shorten the conversation",
                "messages",
                "context_length_exceeded",
            )
        asked = body.asked_max_tokens() or self.settings.default_max_tokens
        params = SamplingParams(
            max_new_tokens=min(asked, room),  # the reply ends at the context's end
            temperature=1.0 if body.temperature is None else body.temperature,  # OpenAI's defaults
            top_p=1.0 if body.top_p is None else body.top_p,
            top_k=body.top_k_cut(),
            n=body.n or 1,
            stop=body.stop_strings(),
            seed=body.seed if body.seed is not None else secrets.randbits(63),
            top_logprobs=(body.top_logprobs or 0) if body.logprobs else 0,
        )
        return ids, params


def create_app(
    model_dir: str | Path,
    settings: ServerSettings | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
) -> FastAPI:
    """The server for the checkpoint in `model_dir`: a full model or a LoRA adapter (merged at load)."""
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer

    settings = settings or ServerSettings()
    path = str(model_dir)
    model = load_causal_lm(path, device=device, dtype=dtype).eval()
    generator = HFGenerator(model, load_tokenizer(path), max_batch_rows=settings.max_batch_rows)
    name = settings.model_name or Path(path).resolve().name
    return app_for_generator(generator, load_tokenizer(path), name, settings)


def app_for_generator(
    generator: HFGenerator, tokenizer, model_name: str, settings: ServerSettings
) -> FastAPI:
    """The server around an `HFGenerator` the app takes over; `tokenizer` is a second copy of its
    tokenizer."""
    engine = Engine(generator, max_queue=settings.max_queue, batch_window_s=settings.batch_window_ms / 1000,
                    max_batch_rows=settings.max_batch_rows)  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        await run_in_threadpool(engine.close)

    app = FastAPI(title="alignlab", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serving = ServingState(
        engine, tokenizer, model_name, settings, max_positions(generator.model), int(time.time())
    )
    _install_errors(app)
    app.include_router(router)
    if settings.api_key is not None:
        app.add_middleware(RequireKey, key=settings.api_key)
    return app


class RequireKey:
    """ASGI middleware: /v1 routes need "Authorization: Bearer <key>" (checked before the body is read)."""

    def __init__(self, app, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1") and not self._allowed(scope):
            err = invalid_api_key()
            await JSONResponse(err.body(), err.status, headers=err.headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.key)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api(request: Request, err: APIError) -> Response:
        return JSONResponse(err.body(), err.status, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> Response:
        return await _api(request, from_validation(err.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        detail = f"{request.method} {request.url.path}: {err.detail}"
        return await _api(request, APIError(err.status_code, detail, code=codes.get(err.status_code)))

    @app.exception_handler(Exception)
    async def _internal(request: Request, err: Exception) -> Response:
        body = APIError(500, f"internal error: {type(err).__name__}: {err}", type="server_error").body()
        return JSONResponse(body, 500)


@router.get("/health")
async def health(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    s, ok = state.engine.stats, state.engine.healthy
    body = {"status": "ok" if ok else "unavailable", "model": state.model_name, "queued": state.engine.queued,
            "batches": s.batches, "requests": s.requests, "largest_batch_rows": s.largest_batch,
            "mean_batch_rows": round(s.rows / s.batches, 2) if s.batches else None}  # fmt: skip
    return JSONResponse(body, 200 if ok else 503)


def _model_card(state: ServingState) -> dict[str, Any]:
    return {"id": state.model_name, "object": "model", "created": state.created, "owned_by": "alignlab"}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [_model_card(request.app.state.serving)]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    state: ServingState = request.app.state.serving
    if model_id != state.model_name:
        raise _unknown_model(model_id, state)
    return _model_card(state)


def _unknown_model(name: str, state: ServingState) -> APIError:
    return APIError(404, f"model {name!r} is not served here; this server serves {state.model_name!r}",
                    param="model", code="model_not_found")  # fmt: skip


async def _read_body(request: Request) -> bytes:
    """The body, refused (413) once it passes MAX_BODY_BYTES, whatever Content-Length claims."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise APIError(
                413,
                f"the request body is larger than {MAX_BODY_BYTES // 2**20} MiB",
                code="request_too_large",
            )
    return bytes(body)


def _parse(raw: bytes) -> ChatCompletionRequest:
    try:
        data = json.loads(raw)
    except ValueError:
        raise bad_request("the request body is not valid JSON", None, "invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object", None, "invalid_json")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as err:
        raise from_validation(err.errors(include_url=False)) from None


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    body = _parse(await _read_body(request))
    if body.model != state.model_name:
        raise _unknown_model(body.model, state)
    body.check_supported(state.settings.max_batch_rows)
    prompt_ids, params = state.prepare(body)
    sink = _Sink(asyncio.get_running_loop(), stream=bool(body.stream))
    job = Job(prompt_ids, params, sink, state.settings.request_timeout_s)
    state.engine.submit(job)  # a full queue or a closing server answers here, before any stream begins
    include_usage = bool(body.stream and body.stream_options and body.stream_options.include_usage)
    maker = ResponseMaker(
        state.model_name, state.tokenizer, logprobs=bool(body.logprobs), include_usage=include_usage
    )
    if body.stream:
        events = _stream(job, sink, maker, state.tokenizer, len(prompt_ids))
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    try:
        item = await _next(sink, job)
    finally:
        if not job.finished:
            job.cancel()  # timed out, or the client went away: the worker stops its rows
    if item[0] == "error":
        raise item[1]
    return JSONResponse(maker.completion(item[1], len(prompt_ids)))


async def _next(sink: _Sink, job: Job) -> tuple[Any, ...]:
    """The job's next result, or a 504 once its deadline passes."""
    try:
        return await asyncio.wait_for(sink.queue.get(), timeout=max(0.0, job.deadline - time.monotonic()))
    except asyncio.TimeoutError:  # the builtin TimeoutError only from Python 3.11
        raise timed_out(job.timeout_s) from None


async def _stream(
    job: Job, sink: _Sink, maker: ResponseMaker, tokenizer, prompt_tokens: int
) -> AsyncIterator[str]:
    """Server-sent events: a role chunk per choice, text deltas as tokens come, finish chunks, [DONE]."""
    params = job.params
    texts = [TextStream(tokenizer, params.stop) for _ in range(params.n)]
    try:
        for j in range(params.n):
            yield maker.chunk(j, {"role": "assistant", "content": ""})
        while True:
            try:
                item = await _next(sink, job)
            except APIError as err:
                item = ("error", err)
            if item[0] == "token":
                _, j, event = item
                delta = texts[j].push(event.token)
                entries = _token_entries(tokenizer, event, params) if maker.logprobs else None
                if delta or entries:
                    yield maker.chunk(j, {"content": delta}, logprobs=entries)
                continue
            if item[0] == "error":  # HTTP 200 is already sent: the error travels as an event
                yield error_event(item[1].body())
                return
            completions = item[1]
            for j, c in enumerate(completions):
                rest = texts[j].finish(c.text)
                if rest:
                    yield maker.chunk(j, {"content": rest})
                yield maker.chunk(j, {}, finish=c.finish_reason)
            if maker.include_usage:
                yield maker.usage_chunk(prompt_tokens, sum(len(c.token_ids) for c in completions))
            yield DONE
            return
    finally:
        if not job.finished:
            job.cancel()  # the client went away (or an error): the worker stops its rows


def _token_entries(tokenizer, event: TokenEvent, params: SamplingParams) -> list[dict[str, Any]]:
    tops = [top_dict(tokenizer, event.top_ids, event.top_logprobs)] if params.top_logprobs else None
    return logprob_entries(token_texts(tokenizer, [event.token]), [event.logprob], tops)
