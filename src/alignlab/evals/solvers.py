"""Solvers: how a sample is put to the model. Each is a small factory returning a `Solver`.

- `plain()`: the sample's own input and follow-ups, unchanged;
- `with_system(text, inner)`: a system prompt first (merged with one the sample already has);
- `with_followups(turns, inner)`: fixed user turns after the sample's, each after the model's
  reply (e.g. "Are you sure?");
- `through_transform(name, inner)`: the last user turn through a registered jailbreak transform
  (text -> text, or text -> turns: many-shot, multi-turn escalation);
- `with_document(placement, inner)`: the sample's `document` (an email, a web page, a tool's
  output) in the user turn below the task, or as a tool turn after a tool call.
Solvers compose: `with_system(DATA_PROMPT, with_document("tool"))`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from alignlab.data.schema import Message, ToolCall, assistant, system, user
from alignlab.evals.core import Dialogue, Sample, Solver

Placement = Literal["user", "tool", "auto"]


@dataclass(frozen=True)
class _Plain:
    def __call__(self, sample: Sample) -> Dialogue:
        return Dialogue(sample.input, sample.followups)


def plain() -> Solver:
    """The sample's input, then its follow-ups."""
    return _Plain()


def _last_user_index(messages: tuple[Message, ...]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return i
    raise ValueError("the dialogue has no user turn to work on")


@dataclass(frozen=True)
class _WithSystem:
    text: str
    inner: Solver

    def __call__(self, sample: Sample) -> Dialogue:
        d = self.inner(sample)
        msgs = d.messages
        if msgs and msgs[0].role == "system":  # one system turn: many templates accept no second
            return Dialogue((system(f"{self.text}\n\n{msgs[0].content}"), *msgs[1:]), d.followups)
        return Dialogue((system(self.text), *msgs), d.followups)


def with_system(text: str, inner: Solver | None = None) -> Solver:
    """A system prompt before the dialogue (put in front of the sample's own, when it has one)."""
    return _WithSystem(text, inner or plain())


@dataclass(frozen=True)
class _WithFollowups:
    turns: tuple[str, ...]
    inner: Solver

    def __call__(self, sample: Sample) -> Dialogue:
        d = self.inner(sample)
        return Dialogue(d.messages, (*d.followups, *self.turns))


def with_followups(turns: tuple[str, ...], inner: Solver | None = None) -> Solver:
    """Fixed user turns sent after the model's replies (multi-turn pressure such as "Are you sure?")."""
    return _WithFollowups(tuple(turns), inner or plain())


@dataclass(frozen=True)
class _ThroughTransform:
    name: str
    inner: Solver

    def __call__(self, sample: Sample) -> Dialogue:
        from alignlab.evals.transforms import get_transform

        d = self.inner(sample)
        i = _last_user_index(d.messages)
        out = get_transform(self.name).fn(d.messages[i].content)
        if isinstance(out, str):
            msgs = (*d.messages[:i], user(out), *d.messages[i + 1 :])
            return Dialogue(msgs, d.followups)
        return Dialogue(
            (*d.messages[:i], *out.messages, *d.messages[i + 1 :]), (*out.followups, *d.followups)
        )


def through_transform(name: str, inner: Solver | None = None) -> Solver:
    """The last user turn rewritten by the jailbreak transform registered as `name`."""
    from alignlab.evals.transforms import get_transform

    get_transform(name)  # an unknown name fails when the suite is built, not mid-run
    return _ThroughTransform(name, inner or plain())


@dataclass(frozen=True)
class _WithDocument:
    placement: Placement
    inner: Solver

    def __call__(self, sample: Sample) -> Dialogue:
        d = self.inner(sample)
        if sample.document is None:
            raise ValueError(f"sample {sample.id!r} has no document for with_document()")
        kind = str(sample.metadata.get("document_kind", "document"))
        i = _last_user_index(d.messages)
        task = d.messages[i].content
        placement = self.placement
        if placement == "auto":
            placement = "tool" if kind == "tool output" else "user"
        if placement == "user":
            text = f"{task}\n\n--- {kind} ---\n{sample.document}\n--- end of {kind} ---"
            return Dialogue((*d.messages[:i], user(text), *d.messages[i + 1 :]), d.followups)
        call = ToolCall(id="call_0", name=f"read_{kind.replace(' ', '_')}", arguments="{}")
        turns = (
            user(task),
            Message(role="assistant", content="", tool_calls=[call]),
            Message(role="tool", content=sample.document, tool_call_id="call_0", name=call.name),
        )
        return Dialogue((*d.messages[:i], *turns, *d.messages[i + 1 :]), d.followups)


def with_document(placement: Placement = "user", inner: Solver | None = None) -> Solver:
    """The sample's document below the task in the user turn ("user"), or returned by a tool call
    the assistant made ("tool"; needs a chat template with a tool role); "auto" makes a document of
    kind "tool output" a tool turn and puts the others in the user turn."""
    if placement not in ("user", "tool", "auto"):
        raise ValueError(f"placement must be 'user', 'tool' or 'auto', got {placement!r}")
    return _WithDocument(placement, inner or plain())


def fabricated_turns(exchanges: tuple[tuple[str, str], ...]) -> tuple[Message, ...]:
    """User / assistant messages of made-up earlier exchanges (many-shot prompts)."""
    return tuple(m for q, a in exchanges for m in (user(q), assistant(a)))
