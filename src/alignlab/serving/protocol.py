"""The chat-completions request, validated: OpenAI's fields, what each means here, what is refused.

Taken: `model`, `messages` (system / developer / user / assistant / tool turns; text content as a
string or as text parts; assistant `tool_calls`), `temperature`, `top_p`, `max_tokens` /
`max_completion_tokens`, `stop` (a string or a list), `n`, `seed`, `logprobs`, `top_logprobs`,
`stream`, `stream_options.include_usage`, `tools` and `tool_choice` ("auto" or "none"), and vLLM's
`top_k`. Accepted and ignored: `user`, `metadata`, `store`, `parallel_tool_calls`, `service_tier`.
Accepted only at their neutral value: `frequency_penalty` and `presence_penalty` (0),
`logit_bias` (empty), `response_format` ({"type": "text"}). Anything else is a 400 naming it:
a client that depends on a feature gets an error, never a silent ignore.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alignlab.data.schema import Message, ToolCall
from alignlab.serving.errors import bad_request

MAX_TOP_LOGPROBS = 20  # OpenAI's limit
MAX_STOP_STRINGS = 16
MAX_STOP_LENGTH = 256  # characters; each step decodes about this many tokens of every reply to find one


class _Lenient(BaseModel):
    # Turns and tools echo what clients got back (`refusal`, `annotations`, ...): extra keys are ignored.
    model_config = ConfigDict(extra="ignore")


class FunctionCall(_Lenient):
    name: str
    arguments: str = "{}"


class ToolCallIn(_Lenient):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Lenient):
    """One turn of the conversation, in OpenAI's shape."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _text_parts_only(cls, v: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        for part in v if isinstance(v, list) else []:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ValueError(
                    f"content part of type {part.get('type')!r} is not supported: this server reads text only"
                )
        return v

    def to_message(self) -> Message:
        text = (
            self.content if isinstance(self.content, str) else "".join(p["text"] for p in self.content or [])
        )
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in self.tool_calls or []
        ]
        role = "system" if self.role == "developer" else self.role  # OpenAI's newer name for the system turn
        return Message(
            role=role, content=text, tool_calls=calls or None, tool_call_id=self.tool_call_id, name=self.name
        )


class FunctionDef(_Lenient):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(_Lenient):
    type: Literal["function"] = "function"
    function: FunctionDef


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """A POST /v1/chat/completions body. Unknown fields are a 400 (as at OpenAI)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)  # vLLM's extension; -1 or 0 = no top-k cut
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**64)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[ToolDef] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    # Only their neutral values: this server has no penalties, biases or constrained formats.
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    response_format: dict[str, Any] | None = None
    # Accepted and ignored.
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    parallel_tool_calls: bool | None = None
    service_tier: str | None = None

    def check_supported(self, max_n: int) -> None:
        """400 for values that are valid OpenAI but that this server cannot honour."""
        for name in ("frequency_penalty", "presence_penalty"):
            if getattr(self, name):
                raise bad_request(
                    f"{name} is not supported by this server: leave it at 0", name, "unsupported_parameter"
                )
        if self.logit_bias:
            raise bad_request(
                "logit_bias is not supported by this server", "logit_bias", "unsupported_parameter"
            )
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise bad_request(
                "only response_format {'type': 'text'} is supported",
                "response_format",
                "unsupported_parameter",
            )
        if self.tool_choice is not None and self.tool_choice not in ("auto", "none"):
            raise bad_request("tool_choice must be 'auto' or 'none': this server cannot force a tool call",
                              "tool_choice", "unsupported_parameter")  # fmt: skip
        if self.top_logprobs and not self.logprobs:
            raise bad_request("top_logprobs needs logprobs set to true", "top_logprobs")
        if (self.n or 1) > max_n:
            raise bad_request(
                f"n is {self.n} but this server generates at most {max_n} choices per request", "n"
            )
        stops = self.stop_strings()
        if len(stops) > MAX_STOP_STRINGS or any(len(s) > MAX_STOP_LENGTH for s in stops):
            raise bad_request(
                f"at most {MAX_STOP_STRINGS} stop strings of at most {MAX_STOP_LENGTH} characters", "stop"
            )

    def conversation(self) -> list[Message]:
        return [m.to_message() for m in self.messages]

    def tool_schemas(self) -> list[dict[str, Any]] | None:
        """Tool schemas for the chat template; none when the request has none or tool_choice is "none"."""
        if not self.tools or self.tool_choice == "none":
            return None
        return [t.model_dump(exclude_none=True) for t in self.tools]

    def stop_strings(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(s for s in stops if s)

    def asked_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def top_k_cut(self) -> int | None:
        return self.top_k if self.top_k is not None and self.top_k > 0 else None
