"""Prompts for online RL: the conversations a policy replies to, with each record's other fields.

A prompt file is JSONL, JSON or parquet (any file or directory `alignlab.data.readers` reads) whose
records hold one of:
- `prompt`: a string (one user turn) or a list of messages;
- `messages`: a conversation, of which the turns up to and including the last user turn are the
  prompt (a trailing assistant reply is dropped: the policy writes its own);
- an hh-rlhf pair (`chosen` / `rejected` transcripts) or an UltraFeedback pair (`chosen` /
  `rejected` conversations that begin with the prompt): their shared prompt.
Every other field of a record (an id, a reference answer, the lab's gold fields, ...) is kept in
`PromptRecord.fields` and reaches rule rewards as a keyword argument.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alignlab.data.fields import RecordError, parse_messages, parse_turns
from alignlab.data.formats import FORMATS
from alignlab.data.preference import with_system_prompt
from alignlab.data.readers import iter_raw_records
from alignlab.data.schema import Message
from alignlab.errors import DataError

EXPECTED = ("`prompt` (a string or a list of messages), `messages` (the conversation up to its last user "
            "turn is the prompt), or an hh-rlhf / UltraFeedback pair (`chosen`, `rejected`)")


@dataclass(frozen=True)
class PromptRecord:
    """One prompt: the conversation to reply to and the record's other fields."""

    messages: tuple[Message, ...]
    fields: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""  # file:line or file: record N, for messages about this record

    @property
    def text(self) -> str:
        """The last user turn's text (what rule rewards get as `prompts`)."""
        users = [m.content for m in self.messages if m.role == "user"]
        return users[-1] if users else self.messages[-1].content


def parse_prompt(raw: dict) -> tuple[list[Message], dict[str, Any]]:
    """(prompt messages, other fields) of one raw record; `RecordError` when it holds no prompt."""
    if "prompt" in raw:
        return parse_turns(raw, "prompt", "user"), _rest(raw, {"prompt"})
    if "messages" in raw:
        messages = parse_messages(raw.get("messages"), "messages")
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        if not users:
            raise RecordError("messages has no user turn to reply to")
        return messages[: users[-1] + 1], _rest(raw, {"messages"})
    if "chosen" in raw and "rejected" in raw:
        name = "hh-rlhf" if isinstance(raw["chosen"], str) else "ultrafeedback"
        return list(FORMATS[name].parse(raw).prompt), _rest(raw, {"chosen", "rejected"})
    raise RecordError(f"no prompt: expected {EXPECTED}; this record has keys {sorted(raw)}")


def _rest(raw: dict, used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in used}


def read_prompts(
    path: str | os.PathLike,
    *,
    split: str | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
    system_prompt: str | None = None,
) -> list[PromptRecord]:
    """The prompts of `path`, in file order; `system_prompt` is added to those without one.

    A malformed record is a `DataError` naming file:line unless `skip_invalid`; a file in which no
    record holds a prompt is a `DataError` naming the file and the keys expected.
    """
    shown = os.fspath(path)
    out: list[PromptRecord] = []
    skipped, first_problem = 0, ""
    for where, raw in iter_raw_records(path, split):
        try:
            if not isinstance(raw, dict):
                raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
            messages, fields = parse_prompt(raw)
        except RecordError as err:
            if not out and not skipped and str(err).startswith("no prompt"):
                keys = sorted(raw) if isinstance(raw, dict) else []
                raise DataError(f"{shown}: holds no prompts: expected {EXPECTED}; its first record "
                                f"({where}) has keys {keys}") from None
            if not skip_invalid:
                raise DataError(f"{where}: {err} (fix it, or set prompts.skip_invalid=true)") from None
            skipped, first_problem = skipped + 1, first_problem or f"{where}: {err}"
            continue
        out.append(PromptRecord(tuple(with_system_prompt(messages, system_prompt)), fields, where))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        why = f"all {skipped} records are malformed (first: {first_problem})" if skipped else "it is empty"
        raise DataError(f"{shown}: holds no prompts: {why}")
    return out
