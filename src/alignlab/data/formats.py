"""Parsers for the dataset formats users really have, registered once by name.

A `FormatSpec` says which record kind a format yields, how to recognise one of its raw records from
its keys (`detect`), and how to turn one raw record (a dict) into a schema record (`parse`). The
detectors are written to be mutually exclusive, so auto-detection does not depend on their order.
A malformed record raises `RecordError` with what is wrong; `readers.py` adds `file:line`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from alignlab.data.fields import (
    RecordError,
    build_record,
    content_text,
    extra_metadata,
    optional_text,
    parse_messages,
    parse_role,
    parse_tool_call,
    parse_turns,
    record_id,
    require_key,
)
from alignlab.data.schema import BinaryFeedback, Conversation, Message, PreferencePair

RecordKind = Literal["conversation", "preference", "feedback"]
Record = Conversation | PreferencePair | BinaryFeedback


@dataclass(frozen=True)
class FormatSpec:
    name: str
    kind: RecordKind
    detect: Callable[[dict], bool]
    parse: Callable[[dict], Record]
    keys: str  # the keys that identify the format, for error messages and docs


def _user_turn(instruction: str, extra: str) -> str:
    # Alpaca's and Dolly's convention: the input / context follows the instruction after a blank line.
    return f"{instruction}\n\n{extra}" if extra.strip() else instruction


def split_shared_prefix(
    chosen: list[Message], rejected: list[Message]
) -> tuple[list[Message], list[Message], list[Message], bool]:
    """Split two full conversations into (prompt, chosen, rejected, identical).

    The prompt is the longest common prefix of whole turns. When one conversation is a prefix of the
    other (identical transcripts included) a response would be empty, so both responses start at the
    last run of assistant turns inside the shared part instead.
    """
    k = 0
    while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
        k += 1
    identical = chosen == rejected
    if k in (len(chosen), len(rejected)):
        while k > 0 and chosen[k - 1].role != "assistant":
            k -= 1
        if k == 0:
            raise RecordError("chosen and rejected have no assistant turn to compare")
        while k > 0 and chosen[k - 1].role == "assistant":
            k -= 1
    if chosen[k].role != "assistant" or rejected[k].role != "assistant":
        raise RecordError(
            f"chosen and rejected first differ at turn {k + 1}, which is not an assistant turn; "
            "a response must start with an assistant turn"
        )
    return chosen[:k], chosen[k:], rejected[k:], identical


# ------------------------------------------------------------------------------------ conversations


def _parse_openai_messages(rec: dict) -> Conversation:
    messages = parse_messages(rec.get("messages"), "messages")
    meta = extra_metadata(rec, {"messages", "tools", "id"}, tools=True)
    return build_record(Conversation, messages=messages, id=record_id(rec), metadata=meta)


def _function_call_turn(value: Any, where: str) -> Message:
    """ShareGPT `function_call`: JSON `{"name", "arguments"}` (or a list of them) becomes a tool call."""
    calls = value
    if isinstance(value, str):
        try:
            calls = json.loads(value)
        except json.JSONDecodeError:
            return Message(role="assistant", content=value)
    calls = calls if isinstance(calls, list) else [calls]
    if not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
        return Message(role="assistant", content=content_text(value, where))
    return Message(role="assistant", tool_calls=[parse_tool_call(c, where) for c in calls])


def _parse_sharegpt_turns(turns: Any, key: str) -> list[Message]:
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"key '{key}' must be a non-empty list of turns")
    out = []
    for i, turn in enumerate(turns):
        where = f"{key}[{i}]"
        if not isinstance(turn, dict):
            raise RecordError(f"{where}: a turn must be an object with 'from' and 'value'")
        # LLaMA-Factory lets datasets rename the tags; role/content is the common alternative.
        speaker, value = turn.get("from", turn.get("role")), turn.get("value", turn.get("content"))
        if speaker is None:
            raise RecordError(f"{where}: turn has no 'from'")
        if speaker == "function_call":
            out.append(_function_call_turn(value, where))
        else:
            out.append(Message(role=parse_role(speaker, where), content=content_text(value, where)))
    return out


def _parse_sharegpt(rec: dict) -> Conversation:
    messages = _parse_sharegpt_turns(rec.get("conversations"), "conversations")
    system = optional_text(rec, "system")
    if system and messages[0].role != "system":
        messages.insert(0, Message(role="system", content=system))
    meta = extra_metadata(rec, {"conversations", "system", "tools", "id"}, tools=True)
    return build_record(Conversation, messages=messages, id=record_id(rec), metadata=meta)


def _history(rec: dict) -> list[Message]:
    """LLaMA-Factory's `history`: earlier `[user, assistant]` pairs, oldest first."""
    out: list[Message] = []
    for i, pair in enumerate(rec.get("history") or []):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise RecordError(f"history[{i}] must be a [user, assistant] pair of strings")
        out += [Message(role="user", content=pair[0]), Message(role="assistant", content=pair[1])]
    return out


def _instruction_conversation(rec: dict, extra_key: str, answer_key: str, used: set[str]) -> Conversation:
    instruction = require_key(rec, "instruction")
    answer = require_key(rec, answer_key)
    messages = [Message(role="system", content=s)] if (s := optional_text(rec, "system")) else []
    messages += _history(rec)
    messages.append(Message(role="user", content=_user_turn(instruction, optional_text(rec, extra_key))))
    messages.append(Message(role="assistant", content=answer))
    return build_record(
        Conversation, messages=messages, id=record_id(rec), metadata=extra_metadata(rec, used)
    )


def _parse_alpaca(rec: dict) -> Conversation:
    # `text` in tatsu-lab/alpaca is the same example rendered with a prompt template: not kept.
    used = {"instruction", "input", "output", "system", "history", "id", "text"}
    return _instruction_conversation(rec, "input", "output", used)


def _parse_dolly(rec: dict) -> Conversation:
    used = {"instruction", "context", "response", "system", "history", "id"}  # category stays in metadata
    return _instruction_conversation(rec, "context", "response", used)


def _completion_key(rec: dict) -> str | None:
    """Where a prompt/completion record keeps its answer: `completion` (TRL), or `response`."""
    return next((k for k in ("completion", "response") if k in rec), None)


def _parse_prompt_completion(rec: dict) -> Conversation:
    answer = _completion_key(rec) or "completion"
    messages = parse_turns(rec, "prompt", "user") + parse_turns(rec, answer, "assistant")
    meta = extra_metadata(rec, {"prompt", answer, "id", "tools"}, tools=True)
    return build_record(Conversation, messages=messages, id=record_id(rec), metadata=meta)


# ------------------------------------------------------------------------------------ preferences

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def split_hh_transcript(text: str, key: str = "transcript") -> list[Message]:
    """Split an hh-rlhf transcript on `\\n\\nHuman:` / `\\n\\nAssistant:` into stripped turns."""
    if text.startswith(("Human:", "Assistant:")):  # some re-uploads drop the leading blank line
        text = "\n\n" + text
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise RecordError(f"{key} has text before its first '\\n\\nHuman:' turn")
    if len(parts) == 1:
        raise RecordError(f"{key} has no '\\n\\nHuman:' / '\\n\\nAssistant:' turns")
    return [
        Message(role="user" if parts[i] == "Human" else "assistant", content=parts[i + 1].strip())
        for i in range(1, len(parts), 2)
    ]


def _parse_hh(rec: dict) -> PreferencePair:
    chosen = split_hh_transcript(require_key(rec, "chosen"), "chosen")
    rejected = split_hh_transcript(require_key(rec, "rejected"), "rejected")
    prompt, chosen, rejected, identical = split_shared_prefix(chosen, rejected)
    if not prompt:
        raise RecordError("chosen and rejected share no turns before the responses; there is no prompt")
    # Identical transcripts carry no preference: marked as a tie rather than dropped.
    meta = extra_metadata(rec, {"chosen", "rejected", "id"})
    pair = {"prompt": prompt, "chosen": chosen, "rejected": rejected, "tie": identical}
    return build_record(PreferencePair, **pair, id=record_id(rec), metadata=meta)


def _parse_ultrafeedback(rec: dict) -> PreferencePair:
    chosen = parse_messages(rec.get("chosen"), "chosen")
    rejected = parse_messages(rec.get("rejected"), "rejected")
    prompt, chosen, rejected, identical = split_shared_prefix(chosen, rejected)
    if not prompt:  # the lists hold only the responses; fall back to the `prompt` field
        prompt = parse_turns(rec, "prompt", "user")
    # `messages` repeats prompt + chosen in UltraFeedback-binarized; `prompt` is now the first turn(s).
    meta = extra_metadata(rec, {"prompt", "chosen", "rejected", "messages", "id", "tools"}, tools=True)
    sc, sr = rec.get("score_chosen"), rec.get("score_rejected")
    margin = sc - sr if isinstance(sc, int | float) and isinstance(sr, int | float) else None
    pair = {"prompt": prompt, "chosen": chosen, "rejected": rejected, "tie": identical, "margin": margin}
    return build_record(PreferencePair, **pair, id=record_id(rec), metadata=meta)


_PAIR_FIELDS = ("tie", "confidence", "margin", "annotator", "reason")


def _parse_preference(rec: dict) -> PreferencePair:
    fields = {k: rec[k] for k in _PAIR_FIELDS if rec.get(k) is not None}
    meta = extra_metadata(rec, {"prompt", "chosen", "rejected", "id", "tools", *_PAIR_FIELDS}, tools=True)
    return build_record(
        PreferencePair,
        prompt=parse_turns(rec, "prompt", "user"),
        chosen=parse_turns(rec, "chosen", "assistant"),
        rejected=parse_turns(rec, "rejected", "assistant"),
        id=record_id(rec),
        metadata=meta,
        **fields,
    )


def _label(rec: dict) -> bool:
    label = rec.get("label")
    if isinstance(label, int) and not isinstance(label, bool) and label in (0, 1):
        label = bool(label)
    if not isinstance(label, bool):
        raise RecordError(f"key 'label' must be true or false, got {label!r}")
    return label


def _split_last_assistant_turn(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    """KTO's conversational layout: everything before the final assistant turn is the prompt."""
    last = len(messages) - 1
    if not any(m.role == "assistant" for m in messages):
        raise RecordError("messages has no assistant turn to label")
    if messages[last].role != "assistant":
        raise RecordError("messages must end with the assistant turn that is labelled")
    if last == 0:
        raise RecordError("messages has no prompt before the assistant turn")
    return messages[:last], messages[last:]


def _parse_kto(rec: dict) -> BinaryFeedback:
    answer = _completion_key(rec)
    if answer is not None:
        prompt, completion = parse_turns(rec, "prompt", "user"), parse_turns(rec, answer, "assistant")
    else:
        prompt, completion = _split_last_assistant_turn(parse_messages(rec.get("messages"), "messages"))
    return build_record(
        BinaryFeedback,
        prompt=prompt,
        completion=completion,
        label=_label(rec),
        id=record_id(rec),
        metadata=extra_metadata(rec, {"prompt", answer or "completion", "messages", "label", "id", "tools"},
                                tools=True),
    )


# ------------------------------------------------------------------------------------ registry


def _starts_with_prompt(value: Any) -> bool:
    """UltraFeedback's responses are full conversations that begin with the user's prompt."""
    first = value[0] if isinstance(value, list) and value else None
    return isinstance(first, dict) and first.get("role") != "assistant"


def _is_pair(r: dict) -> bool:
    return "chosen" in r and "rejected" in r


def _is_labelled_messages(r: dict) -> bool:
    """KTO's conversational layout: `messages` plus a desirability flag (true / false, or 1 / 0)."""
    label = r.get("label")
    flag = isinstance(label, bool) or (isinstance(label, int) and label in (0, 1))
    return isinstance(r.get("messages"), list) and flag and not _is_pair(r)


_SPECS = [
    FormatSpec(
        "messages",
        "conversation",
        lambda r: isinstance(r.get("messages"), list) and not _is_pair(r) and not _is_labelled_messages(r),
        _parse_openai_messages,
        "messages[{role, content, tool_calls?}], tools?",
    ),
    FormatSpec(
        "sharegpt",
        "conversation",
        lambda r: isinstance(r.get("conversations"), list) and not _is_pair(r),
        _parse_sharegpt,
        "conversations[{from, value}]",
    ),
    FormatSpec(
        "alpaca",
        "conversation",
        lambda r: "instruction" in r and "response" not in r and not _is_pair(r),
        _parse_alpaca,
        "instruction, input?, output",
    ),
    FormatSpec(
        "dolly",
        "conversation",
        lambda r: "instruction" in r and "response" in r and not _is_pair(r),
        _parse_dolly,
        "instruction, context, response",
    ),
    FormatSpec(
        "prompt-completion",
        "conversation",
        lambda r: (
            "prompt" in r and _completion_key(r) is not None and "label" not in r and "instruction" not in r
        ),
        _parse_prompt_completion,
        "prompt, completion (or response)",
    ),
    FormatSpec(
        "hh-rlhf",
        "preference",
        lambda r: _is_pair(r) and isinstance(r.get("chosen"), str) and "prompt" not in r,
        _parse_hh,
        "chosen, rejected (Human:/Assistant: transcripts)",
    ),
    FormatSpec(
        "ultrafeedback",
        "preference",
        lambda r: _is_pair(r) and _starts_with_prompt(r.get("chosen")),
        _parse_ultrafeedback,
        "prompt, chosen[...], rejected[...] (full conversations)",
    ),
    FormatSpec(
        "preference",
        "preference",
        lambda r: _is_pair(r) and "prompt" in r and not _starts_with_prompt(r.get("chosen")),
        _parse_preference,
        "prompt, chosen, rejected",
    ),
    FormatSpec(
        "kto",
        "feedback",
        lambda r: (
            (_completion_key(r) is not None and "label" in r and "instruction" not in r)
            or _is_labelled_messages(r)
        ),
        _parse_kto,
        "prompt, completion (or response), label | messages, "
        "label (the last assistant turn is the completion)",
    ),
]

FORMATS: dict[str, FormatSpec] = {spec.name: spec for spec in _SPECS}


def format_names(kind: RecordKind | None = None) -> list[str]:
    """Registered format names, or those that yield `kind` records."""
    return [name for name, spec in FORMATS.items() if kind is None or spec.kind == kind]


def format_choices() -> list[str]:
    """What a config's `data.format` takes: auto (detect), then every format name."""
    return ["auto", *format_names()]


def detect_format(rec: dict) -> FormatSpec | None:
    """The format whose keys `rec` has, or None."""
    return next((spec for spec in FORMATS.values() if spec.detect(rec)), None)
