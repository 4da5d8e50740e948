"""What the `cai` and `rlaif` stages read: prompts to answer, and pairs of responses to compare.

Prompts (`read_prompt_file`): any table `evals.tables.read_table` reads (JSONL, JSON, parquet, CSV)
whose rows hold `messages` (a conversation; trailing assistant turns are dropped, so an SFT file
gives its prompts), `prompt` (a string, or a list of turns) or a prompt-like column (`instruction`,
`goal`, ...). Ids are the rows' `id`, else their 1-based row number.

Pairs (`read_pairs_to_label`): the labelling format or any preference file, parsed by
`data.pair_files` exactly as the labelling app parses them (identical responses and repeats are
left out and counted). The labels an input carries (a preference file's chosen side, the labelling
format's `gold`) are returned apart, as reference labels: the judge never sees them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from alignlab.data.fields import RecordError, parse_messages, parse_turns
from alignlab.data.schema import Message, PreferencePair, user
from alignlab.errors import DataError
from alignlab.feedback.labeller import PairToLabel


@dataclass(frozen=True)
class Prompts:
    ids: list[str]
    prompts: list[list[Message]]


def read_prompt_file(path: str | os.PathLike, limit: int | None = None) -> Prompts:
    """Conversations for the assistant to answer next (see the module doc)."""
    from alignlab.evals.datasets import PROMPT_COLUMNS
    from alignlab.evals.tables import cell, read_table

    table = read_table(path)
    column = None
    if "messages" not in table.columns and "prompt" not in table.columns:
        column = table.pick(PROMPT_COLUMNS, "prompt")
    ids: list[str] = []
    prompts: list[list[Message]] = []
    for n, (where, row) in enumerate(table.rows[:limit] if limit else table.rows, 1):
        try:
            turns = _prompt_turns(row, column)
        except RecordError as e:
            raise DataError(f"{where}: {e}") from None
        ids.append(cell(row, "id") or str(n))
        prompts.append(turns)
    if len(set(ids)) != len(ids):
        raise DataError(f"{table.path}: ids are not unique; give every prompt its own id")
    return Prompts(ids, prompts)


def _prompt_turns(row: dict, column: str | None) -> list[Message]:
    if column is not None:
        text = row.get(column)
        if not isinstance(text, str) or not text.strip():
            raise RecordError(f"empty '{column}'; every row needs a prompt")
        return [user(text)]
    if "messages" in row:
        turns = parse_messages(row.get("messages"), "messages")
    else:
        turns = parse_turns(row, "prompt", "user")
    while turns and turns[-1].role == "assistant":
        turns.pop()
    if not turns or turns[-1].role not in ("user", "tool"):
        raise RecordError("the prompt must end with a user (or tool) turn for the assistant to answer")
    return turns


@dataclass(frozen=True)
class PairsToLabel:
    items: list[PairToLabel]
    input_labels: list[PreferencePair]  # the labels the file carries, for the audit only
    format: str
    skipped: int  # identical responses and repeats, left out


def read_pairs_to_label(path: str | os.PathLike, format: str = "auto",
                        limit: int | None = None) -> PairsToLabel:
    """Pairs for a judge from the labelling format or a preference file (see the module doc)."""
    from alignlab.data.pair_files import NATIVE, parse_file
    from alignlab.data.readers import read_preferences

    parsed = parse_file(os.fspath(path), format)
    chosen = parsed.pairs[:limit] if limit else parsed.pairs
    items = [PairToLabel(_turns(p.prompt), _turns(p.response_a), _turns(p.response_b), p.ext_id, p.meta)
             for p in chosen]
    if parsed.format == NATIVE:
        labels = [_gold_pair(it, p.gold) for it, p in zip(items, chosen, strict=True) if p.gold is not None]
    else:
        labels = read_preferences(path, parsed.format).records
    return PairsToLabel(items, labels, parsed.format, parsed.skipped)


def _turns(messages: list[dict]) -> tuple[Message, ...]:
    return tuple(Message.model_validate(m) for m in messages)


def _gold_pair(item: PairToLabel, gold: str) -> PreferencePair:
    """The labelling format's `gold` ("a" or "b") as a preference pair."""
    chosen, rejected = (item.first, item.second) if gold == "a" else (item.second, item.first)
    return PreferencePair(prompt=list(item.prompt), chosen=list(chosen), rejected=list(rejected),
                          annotator="gold", id=item.id)
