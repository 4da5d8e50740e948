"""The records every stage reads and writes.

`Conversation` is what SFT trains on; `PreferencePair` is what reward models and the DPO family
train on (and what labellers, human or simulated, produce); `BinaryFeedback` is KTO's unpaired
thumbs-up / thumbs-down. All serialise to one JSON object per line (`to_json()` / `model_validate`).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


class ToolCall(_Record):
    """A function call made by the assistant (OpenAI shape, arguments as a JSON string or object)."""

    id: str | None = Field(default=None, description="Call id that the tool's reply refers to.")
    name: str = Field(description="Name of the function called.")
    arguments: str | dict[str, Any] = Field(default="{}", description="Arguments, JSON text or object.")


class Message(_Record):
    """One turn of a conversation."""

    role: Role = Field(description="system, user, assistant or tool.")
    content: str = Field(default="", description="Text of the turn.")
    tool_calls: list[ToolCall] | None = Field(default=None, description="Calls made by an assistant turn.")
    tool_call_id: str | None = Field(default=None, description="For a tool turn: the call it answers.")
    name: str | None = Field(default=None, description="Optional speaker or tool name.")

    def to_template_dict(self) -> dict[str, Any]:
        """The dict shape Hugging Face chat templates expect."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [
                {
                    "type": "function",
                    "id": c.id,
                    "function": {"name": c.name, "arguments": _arguments(c.arguments)},
                }
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            d["name"] = self.name
        return d


def _arguments(args: str | dict[str, Any]) -> str | dict[str, Any]:
    """Templates expect arguments as an object (Hugging Face's convention); OpenAI data holds JSON
    text, which a template's `tojson` would otherwise encode a second time."""
    if isinstance(args, str):
        try:
            parsed = json.loads(args)
        except ValueError:
            return args
        return parsed if isinstance(parsed, dict) else args
    return args


class Conversation(_Record):
    """A multi-turn conversation; SFT learns its assistant turns."""

    messages: list[Message] = Field(min_length=1, description="Turns in order.")
    id: str | None = Field(default=None, description="Stable id of the record, when the source has one.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form source fields.")

    @property
    def has_assistant_turn(self) -> bool:
        return any(m.role == "assistant" for m in self.messages)


class PreferencePair(_Record):
    """Two responses to one prompt, one preferred (or a tie)."""

    prompt: list[Message] = Field(min_length=1, description="Shared conversation before the responses.")
    chosen: list[Message] = Field(min_length=1, description="Preferred response turn(s).")
    rejected: list[Message] = Field(min_length=1, description="Dispreferred response turn(s).")
    tie: bool = Field(default=False, description="True when the labeller judged both equal.")
    confidence: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Labeller confidence in [0, 1] (0.5 = unsure)."
    )
    margin: float | None = Field(default=None, description="Graded preference strength, when known.")
    annotator: str | None = Field(default=None, description="Who labelled it (human or AI labeller id).")
    reason: str | None = Field(default=None, description="Why, as a category or free text.")
    id: str | None = Field(default=None, description="Stable id of the pair.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form source fields.")

    @field_validator("chosen", "rejected")
    @classmethod
    def _responses_are_assistant(cls, v: list[Message]) -> list[Message]:
        if v[0].role != "assistant":
            raise ValueError("a response must start with an assistant turn")
        return v


class BinaryFeedback(_Record):
    """One response with a desirable / undesirable label (KTO's unpaired data)."""

    prompt: list[Message] = Field(min_length=1, description="Conversation before the completion.")
    completion: list[Message] = Field(min_length=1, description="The response turn(s).")
    label: bool = Field(description="True when the completion is desirable.")
    id: str | None = Field(default=None, description="Stable id of the record.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form source fields.")


def user(text: str) -> Message:
    return Message(role="user", content=text)


def assistant(text: str) -> Message:
    return Message(role="assistant", content=text)


def system(text: str) -> Message:
    return Message(role="system", content=text)
