"""The prompt files published with Constitutional AI (Bai et al. 2022, arXiv:2212.08073), read unchanged.

- Critique and revision: a JSON object mapping a principle id to
  `{"prompt": [critique request, ...], "edit_request": revision request}`. Each id becomes a
  principle with those critique requests and that revision request.
- Comparison instructions (preference labelling): a JSON list of strings, each a question ending in
  "Options:". The i-th becomes principle `comparison-<i>` (0-based) with that comparison question.
- Few-shot critique and revision (`load_few_shot`): a JSON list of transcripts
  `"\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nCritiqueRequest: ...\\n\\nCritique: ...\\n\\nRevisionRequest:
  ...\\n\\nRevision: ...\\n\\nHuman:"`; each becomes a `FewShotExample`.

The constitution's name is the file's stem. Unknown keys and wrong types raise `ConfigError` naming
the file, the line and the key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from alignlab.data.formats import RecordError, split_hh_transcript
from alignlab.errors import ConfigError
from alignlab.feedback.constitution import (
    Constitution,
    FewShotExample,
    KeyPath,
    Principle,
    key_error,
    key_lines,
    parse_document,
    read_text_file,
)

CRITIQUE_KEYS = ("prompt", "edit_request")
_FEW_SHOT_PARTS = ("CritiqueRequest", "Critique", "RevisionRequest", "Revision")
_FEW_SHOT_SPLIT = re.compile(r"\n\n(CritiqueRequest|Critique|RevisionRequest|Revision):")
_TRAILING_HUMAN = re.compile(r"\n\nHuman:\s*$")


def critique_revision_constitution(data: dict, path: Path, lines: dict[KeyPath, int]) -> Constitution:
    """`{id: {"prompt": [critique request, ...], "edit_request": revision request}}` -> Constitution."""
    src = str(path)
    if not data:
        raise ConfigError(f"{src}: no principles; a critique-revision file maps principle ids to requests")
    principles = []
    for pid, entry in data.items():
        if not isinstance(entry, dict):
            raise key_error(src, lines, (pid,), 'expected {"prompt": [...], "edit_request": "..."}')
        for key in entry:
            if key not in CRITIQUE_KEYS:
                raise key_error(
                    src, lines, (pid, key), f"unknown key; a principle has {' and '.join(CRITIQUE_KEYS)}"
                )
        for key in CRITIQUE_KEYS:
            if key not in entry:
                raise key_error(src, lines, (pid,), f"missing key '{key}'; add it")
        requests = entry["prompt"]
        if isinstance(requests, str):
            requests = [requests]
        if not isinstance(requests, list) or not requests or not all(isinstance(r, str) for r in requests):
            raise key_error(
                src, lines, (pid, "prompt"), "expected a non-empty list of critique request strings"
            )
        if not isinstance(entry["edit_request"], str):
            raise key_error(src, lines, (pid, "edit_request"), "expected the revision request as a string")
        try:
            principles.append(
                Principle(id=str(pid), critique=tuple(requests), revision=entry["edit_request"])
            )
        except ValidationError as err:
            raise key_error(src, lines, (pid,), _first_message(err)) from None
    return Constitution(name=path.stem, principles=tuple(principles))


def comparison_constitution(data: list, path: Path, lines: dict[KeyPath, int]) -> Constitution:
    """`[comparison instruction, ...]` -> Constitution with principles `comparison-0`, `comparison-1`, ..."""
    src = str(path)
    if not data:
        raise ConfigError(f"{src}: the list of comparison instructions is empty")
    principles = []
    for i, question in enumerate(data):
        if not isinstance(question, str) or not question.strip():
            raise key_error(src, lines, (i,), "expected a comparison instruction (a non-empty string)")
        if "CritiqueRequest:" in question:
            raise key_error(
                src, lines, (i,),
                "this is a few-shot critique-revision transcript, not a comparison instruction; load it as "
                "few-shot examples (load_few_shot) instead",
            )
        principles.append(Principle(id=f"comparison-{i}", comparison=question))
    return Constitution(name=path.stem, principles=tuple(principles))


def load_few_shot(path: str | os.PathLike) -> tuple[FewShotExample, ...]:
    """The published few-shot critique-revision transcripts (a JSON list of strings) as examples."""
    p = Path(path)
    text = read_text_file(p)
    data = parse_document(p, text)
    lines = key_lines(text)
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{p}: expected a non-empty JSON list of few-shot transcripts")
    return tuple(_few_shot_example(item, str(p), lines, i) for i, item in enumerate(data))


def _few_shot_example(item: Any, src: str, lines: dict[KeyPath, int], i: int) -> FewShotExample:
    if not isinstance(item, str):
        raise key_error(src, lines, (i,), "expected a transcript string")
    pieces = _FEW_SHOT_SPLIT.split(item)
    names = pieces[1::2]
    if tuple(names) != _FEW_SHOT_PARTS:
        raise key_error(
            src, lines, (i,),
            f"expected the parts {', '.join(_FEW_SHOT_PARTS)} once each and in that order, found "
            f"{', '.join(names) or 'none'}",
        )
    fields = dict(zip(names, (t.strip() for t in pieces[2::2]), strict=True))
    fields["Revision"] = _TRAILING_HUMAN.sub("", "\n\n" + fields["Revision"]).strip()
    try:
        turns = split_hh_transcript(pieces[0], f"transcript {i}")
    except RecordError as err:
        raise key_error(src, lines, (i,), str(err)) from None
    if len(turns) < 2 or turns[-1].role != "assistant":
        raise key_error(
            src, lines, (i,), "the conversation must end with the assistant response that is critiqued"
        )
    return FewShotExample(
        prompt=tuple(turns[:-1]),
        response=turns[-1].content,
        critique_request=fields["CritiqueRequest"],
        critique=fields["Critique"],
        revision_request=fields["RevisionRequest"],
        revision=fields["Revision"],
    )


def _first_message(err: ValidationError) -> str:
    return err.errors()[0]["msg"].removeprefix("Value error, ")

