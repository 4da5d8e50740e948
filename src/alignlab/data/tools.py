"""Tool calls, tool schemas and tool replies for chat templates that do not render them.

Most chat templates render only each message's `content`: an assistant turn that holds just a call
(`content=""`, `tool_calls=[...]`) would be learned as a bare end-of-turn token, the `tools`
schemas would be ignored, and some templates skip `tool` turns altogether. `probe` finds which of
the three a template renders, once per template, by rendering a small conversation that carries a
marker name and looking for it. What the template does not render, `prepare` writes into the
messages as text, in the Hermes-style format LLaMA-Factory and Qwen use (and that
`DEFAULT_CHAT_TEMPLATE` renders itself, so the two agree character for character):

- schemas: a system turn (the conversation's own, extended after a blank line, or a new first
  one) holding `tools_block(tools)`: a "# Tools" heading, one JSON schema per line between
  `<tools>` and `</tools>`, and how to call one;
- a call: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one line per call, after the
  turn's content;
- a tool reply: a user turn `<tool_response>\\n...\\n</tool_response>`; consecutive replies share
  one turn.

Templates that render a part themselves keep their own format for it. Schemas are passed to the
template in the OpenAI shape (`{"type": "function", "function": {...}}`); LLaMA-Factory's flat
`{"name", "description", "parameters"}` is wrapped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOOLS_HEADER = (
    "# Tools\n\nYou can call the functions below. Their schemas, one JSON object per line:\n<tools>\n"
)
TOOLS_FOOTER = (
    "</tools>\n\nTo call a function, answer with its name and arguments as JSON between tool_call tags:\n"
    '<tool_call>{"name": <function name>, "arguments": <arguments object>}</tool_call>'
)
_MARK = "alignlab_probe_marker"

Dicts = list[dict[str, Any]]
Render = Callable[[Dicts, list[dict[str, Any]] | None], str]  # raises when the template fails


@dataclass(frozen=True)
class ToolSupport:
    """Which tool parts a chat template renders by itself."""

    calls: bool
    schemas: bool
    replies: bool

    def missing(self) -> list[str]:
        return [n for n, ok in (("tool calls", self.calls), ("tool schemas", self.schemas),
                                ("tool replies", self.replies)) if not ok]  # fmt: skip


def normalise_tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Schemas in the OpenAI shape; None when there are none."""
    if not tools:
        return None
    return [dict(t) if "function" in t else {"type": "function", "function": dict(t)} for t in tools]


def tools_block(tools: Sequence[Mapping[str, Any]]) -> str:
    """The schemas as the text of a system turn (see the module docstring)."""
    return TOOLS_HEADER + "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tools) + TOOLS_FOOTER


def call_text(call: Mapping[str, Any]) -> str:
    """One call as `<tool_call>{"name": ..., "arguments": ...}</tool_call>` (arguments text kept as is)."""
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    args_text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return (
        f'<tool_call>{{"name": {json.dumps(fn["name"], ensure_ascii=False)}, '
        f'"arguments": {args_text}}}</tool_call>'
    )


def _shows_marker(render: Render, dicts: Dicts, tools: list[dict[str, Any]] | None) -> bool:
    try:
        return _MARK in render(dicts, tools)
    except Exception:  # a template that fails on the probe does not render that part
        return False


def probe(render: Render) -> ToolSupport:
    """Render three small conversations with a marker name to see what the template shows."""
    ask = {"role": "user", "content": "?"}
    call = {"type": "function", "id": "call_0", "function": {"name": _MARK, "arguments": {}}}
    other = {"type": "function", "id": "call_0", "function": {"name": "lookup", "arguments": {}}}
    schema = {
        "type": "function",
        "function": {"name": _MARK, "description": "", "parameters": {"type": "object"}},
    }
    return ToolSupport(
        calls=_shows_marker(render, [ask, {"role": "assistant", "content": "", "tool_calls": [call]}], None),
        schemas=_shows_marker(render, [ask], [schema]),
        replies=_shows_marker(
            render,
            [ask, {"role": "assistant", "content": "", "tool_calls": [other]},
             {"role": "tool", "content": _MARK, "tool_call_id": "call_0"}],
            None,
        ),
    )  # fmt: skip


def _calls_as_text(d: dict[str, Any]) -> dict[str, Any]:
    calls = "\n".join(call_text(c) for c in d["tool_calls"])
    content = d.get("content") or ""
    out = {k: v for k, v in d.items() if k != "tool_calls"}
    out["content"] = f"{content}\n{calls}" if content else calls
    return out


def prepare(
    dicts: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None, support: ToolSupport
) -> tuple[Dicts, list[dict[str, Any]] | None, list[int]]:
    """(messages, tools for the template, origin): the parts `support` lacks written as text.

    `origin[j]` is the index in `dicts` of the message that became message j (-1 for an added
    system turn); merged tool replies point at the first of them.
    """
    schemas = normalise_tools(tools)
    out: Dicts = []
    origin: list[int] = []
    merged_reply = False
    for i, raw in enumerate(dicts):
        d = dict(raw)
        if d.get("tool_calls") and not support.calls:
            d = _calls_as_text(d)
        if d.get("role") == "tool" and not support.replies:
            reply = f"<tool_response>\n{d.get('content') or ''}\n</tool_response>"
            if merged_reply:
                out[-1] = {**out[-1], "content": out[-1]["content"] + "\n" + reply}
                continue
            d, merged_reply = {"role": "user", "content": reply}, True
        else:
            merged_reply = False
        out.append(d)
        origin.append(i)
    if schemas and not support.schemas:
        block = tools_block(schemas)
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": f"{out[0].get('content') or ''}\n\n{block}".lstrip("\n")}
        else:
            out.insert(0, {"role": "system", "content": block})
            origin.insert(0, -1)
        schemas = None
    return out, schemas, origin
