"""Reading the fields of one raw record: required keys, text, roles, messages, tool calls, metadata.

Shared by every record format (`formats.py`); a malformed field raises `RecordError` saying what is
wrong, and the reader adds where.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from alignlab.data.schema import Message, ToolCall


class RecordError(ValueError):
    """One raw record is malformed; the message says what is wrong (the reader says where)."""


def json_problem(e: json.JSONDecodeError) -> str:
    """`not valid JSON (Expecting value: column 1)`: json's own words (some end in "at") and where."""
    return f"not valid JSON ({e.msg}: column {e.colno})"


# Speaker names seen in the wild, mapped onto our four roles.
_ROLE_ALIASES = {
    "system": "system", "developer": "system",
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "model": "assistant", "bot": "assistant",
    "tool": "tool", "function": "tool", "observation": "tool", "ipython": "tool",
}  # fmt: skip


# ------------------------------------------------------------------------------------ helpers


def require_key(rec: dict, key: str, types: type | tuple[type, ...] = str) -> Any:
    value = rec.get(key)
    if value is None:
        raise RecordError(f"missing key '{key}'")
    if not isinstance(value, types):
        want = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise RecordError(f"key '{key}' must be {want}, got {type(value).__name__}")
    return value


def optional_text(rec: dict, key: str) -> str:
    value = rec.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"key '{key}' must be str, got {type(value).__name__}")
    return value


def content_text(content: Any, where: str) -> str:
    """Message content: a string, null, or OpenAI-style content parts (text parts are joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text":
                texts.append(part.get("text") or "")
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RecordError(f"{where}: content part of type '{kind}' is not supported (text only)")
        return "\n".join(texts)
    raise RecordError(f"{where}: content must be a string or a list of text parts")


def parse_role(raw: Any, where: str) -> str:
    role = _ROLE_ALIASES.get(str(raw).lower()) if raw is not None else None
    if role is None:
        raise RecordError(f"{where}: unknown role {raw!r}; expected one of {sorted(_ROLE_ALIASES)}")
    return role


def parse_tool_call(raw: Any, where: str) -> ToolCall:
    """OpenAI's `{"id", "type": "function", "function": {"name", "arguments"}}` or our flat shape."""
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: a tool call must be an object")
    fn = raw.get("function") if isinstance(raw.get("function"), dict) else raw
    if not isinstance(fn.get("name"), str):
        raise RecordError(f"{where}: tool call has no function name")
    args = fn.get("arguments")
    return ToolCall(id=raw.get("id"), name=fn["name"], arguments="{}" if args is None else args)


def parse_message(raw: Any, where: str) -> Message:
    """One message in OpenAI chat shape (which our own `Message.to_json()` also is)."""
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: a message must be an object, got {type(raw).__name__}")
    if "role" not in raw:
        raise RecordError(f"{where}: message has no 'role'")
    calls = raw.get("tool_calls") or None
    if calls is not None and not isinstance(calls, list):
        raise RecordError(f"{where}: 'tool_calls' must be a list")
    name, call_id = raw.get("name"), raw.get("tool_call_id")
    return Message(
        role=parse_role(raw["role"], where),
        content=content_text(raw.get("content"), where),
        tool_calls=[parse_tool_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(calls)]
        if calls
        else None,
        tool_call_id=None if call_id is None else str(call_id),
        name=None if name is None else str(name),
    )


def parse_messages(raw: Any, key: str) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise RecordError(f"key '{key}' must be a non-empty list of messages")
    return [parse_message(m, f"{key}[{i}]") for i, m in enumerate(raw)]


def parse_turns(rec: dict, key: str, role: str) -> list[Message]:
    """TRL's two shapes: a string (one turn of `role`) or a list of messages (conversational)."""
    value = require_key(rec, key, (str, list))
    return [Message(role=role, content=value)] if isinstance(value, str) else parse_messages(value, key)


def parse_tools(rec: dict) -> list | None:
    """Tool schemas: a list, or (LLaMA-Factory) JSON text of a list."""
    tools = rec.get("tools")
    if tools in (None, "", []):
        return None
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError:
            raise RecordError("key 'tools' is text but not valid JSON") from None
    if not isinstance(tools, list):
        raise RecordError("key 'tools' must be a list of tool schemas")
    return tools


def record_id(rec: dict) -> str | None:
    value = rec.get("id")
    return None if value is None else str(value)


def extra_metadata(rec: dict, used: set[str], tools: bool = False) -> dict[str, Any]:
    """Our own `metadata` dict plus every source field the format does not consume.

    Tool schemas (`tools`) go to `metadata["tools"]`, where chat templating looks for them.
    """
    meta = rec.get("metadata")
    out = dict(meta) if isinstance(meta, dict) else {}
    out.update({k: v for k, v in rec.items() if k not in used and k != "metadata" and v is not None})
    if tools and (schemas := parse_tools(rec)) is not None:
        out["tools"] = schemas
    return out


def build_record(cls: type, **fields: Any) -> Any:
    """Construct a schema record, turning pydantic's error into a one-line `RecordError`."""
    try:
        return cls(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise RecordError(f"{loc}: {msg}" if loc else msg) from None
