"""Readers for the public benchmark files, in their published formats (CSV, unchanged).

Each reader, the file it reads, and the columns it uses:

- `read_xstest`: XSTest `xstest_prompts.csv`; id, prompt, type (`contrast_*` = unsafe, else safe)
- `read_orbench`: OR-Bench CSVs (80k / hard-1k / toxic); prompt, category
- `read_advbench`: AdvBench `harmful_behaviors.csv`; goal, target
- `read_harmbench`: HarmBench `harmbench_behaviors_text_*.csv`; Behavior, FunctionalCategory,
  SemanticCategory, Tags, ContextString, BehaviorID
- `read_truthfulqa`: TruthfulQA `TruthfulQA.csv`; Question, Best Answer, Correct Answers,
  Incorrect Answers
- `read_prompts`: any CSV / JSONL of prompts; prompt (or instruction, goal, Behavior, Question),
  optional id

HarmBench's copyright behaviours (scored by hashing against the original text, not by a judge)
are skipped and counted; a contextual behaviour's ContextString comes before the request,
separated by a `---` line, as HarmBench's own evaluation lays it out. TruthfulQA's answer lists
are split on ";" and each answer ends with a period, as the upstream MC code formats them.
Sample ids are the file's own (XSTest `id`, HarmBench `BehaviorID`), else the 1-based row number,
so a file of existing responses can be matched to them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from alignlab.data.schema import user
from alignlab.errors import DataError
from alignlab.evals.core import Sample
from alignlab.evals.tables import cell, read_table

_Path = str | os.PathLike

HARMBENCH_COLUMNS = (
    "Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString", "BehaviorID"
)
TRUTHFULQA_COLUMNS = ("Question", "Best Answer", "Correct Answers", "Incorrect Answers")
PROMPT_COLUMNS = ("prompt", "instruction", "goal", "Behavior", "Question")


@dataclass(frozen=True)
class Loaded:
    """Samples read from a file, and how many rows were skipped for which reason."""

    samples: tuple[Sample, ...]
    skipped: dict[str, int] = field(default_factory=dict)


def _loaded(path: str, samples: list[Sample], skipped: dict[str, int] | None = None) -> Loaded:
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            raise DataError(f"{path}: id {s.id!r} appears twice; ids must be unique")
        seen.add(s.id)
    return Loaded(tuple(samples), skipped or {})


def _text(row: dict, column: str, where: str) -> str:
    value = cell(row, column)
    if not value:
        raise DataError(f"{where}: empty '{column}'; every row needs one")
    return value


def read_xstest(path: _Path) -> Loaded:
    """XSTest prompts: 250 safe prompts that sound unsafe, and 200 unsafe contrast prompts."""
    table = read_table(path)
    table.require(("id", "prompt", "type"), "XSTest prompts")
    samples = []
    for where, row in table.rows:
        kind = _text(row, "type", where)
        samples.append(Sample(
            id=_text(row, "id", where), input=(user(_text(row, "prompt", where)),),
            label="unsafe" if kind.startswith("contrast_") else "safe",
            metadata={"type": kind, "focus": cell(row, "focus"), "note": cell(row, "note")},
        ))  # fmt: skip
    return _loaded(table.path, samples)


def read_orbench(path: _Path, label: str = "safe") -> Loaded:
    """OR-Bench prompts (prompt, category); the file does not say whether they are safe: `label` does
    (OR-Bench-80k and -hard-1k hold seemingly toxic but safe prompts, OR-Bench-toxic unsafe ones)."""
    if label not in ("safe", "unsafe"):
        raise DataError(f"OR-Bench label must be 'safe' or 'unsafe', got {label!r}")
    table = read_table(path)
    table.require(("prompt", "category"), "OR-Bench prompts")
    return Loaded(tuple(
        Sample(id=str(i), input=(user(_text(row, "prompt", where)),), label=label,
               metadata={"category": cell(row, "category")})
        for i, (where, row) in enumerate(table.rows, 1)
    ))  # fmt: skip


def read_advbench(path: _Path) -> Loaded:
    """AdvBench harmful behaviours: the request (goal) and the affirmative opening GCG aims for (target)."""
    table = read_table(path)
    table.require(("goal", "target"), "AdvBench harmful behaviours")
    return Loaded(tuple(
        Sample(id=str(i), input=(user(_text(row, "goal", where)),), target=cell(row, "target") or None,
               label="unsafe", metadata={"behavior": _text(row, "goal", where)})
        for i, (where, row) in enumerate(table.rows, 1)
    ))  # fmt: skip


def harmbench_prompt(behavior: str, context: str) -> str:
    """The request as HarmBench asks it: a contextual behaviour's context first."""
    return f"{context}\n\n---\n\n{behavior}" if context else behavior


def read_harmbench(path: _Path) -> Loaded:
    """HarmBench text behaviours (standard and contextual; copyright rows skipped and counted)."""
    table = read_table(path)
    table.require(HARMBENCH_COLUMNS, "HarmBench behaviours")
    samples, skipped = [], 0
    for where, row in table.rows:
        functional = cell(row, "FunctionalCategory")
        if functional == "copyright":
            skipped += 1
            continue
        behavior, context = _text(row, "Behavior", where), cell(row, "ContextString")
        samples.append(Sample(
            id=_text(row, "BehaviorID", where), input=(user(harmbench_prompt(behavior, context)),),
            label="unsafe",
            metadata={"behavior": behavior, "context": context, "functional_category": functional,
                      "semantic_category": cell(row, "SemanticCategory"), "tags": cell(row, "Tags")},
        ))  # fmt: skip
    return _loaded(table.path, samples, {"copyright": skipped} if skipped else {})


def _close(answer: str) -> str:
    return answer if answer.endswith(".") else answer + "."


def split_answers(text: str) -> tuple[str, ...]:
    """TruthfulQA's "a; b; c" answer lists, each answer closed with a period (upstream's format)."""
    return tuple(dict.fromkeys(_close(a.strip()) for a in text.split(";") if a.strip()))


def read_truthfulqa(path: _Path) -> Loaded:
    """TruthfulQA: each question with its correct answers (the best one first) and incorrect ones."""
    table = read_table(path)
    table.require(TRUTHFULQA_COLUMNS, "TruthfulQA")
    samples = []
    for i, (where, row) in enumerate(table.rows, 1):
        best = _close(_text(row, "Best Answer", where))
        correct = tuple(dict.fromkeys((best, *split_answers(cell(row, "Correct Answers")))))
        incorrect = split_answers(_text(row, "Incorrect Answers", where))
        samples.append(Sample(
            id=str(i), input=(user(_text(row, "Question", where)),), correct=correct,
            incorrect=incorrect, metadata={"category": cell(row, "Category"), "type": cell(row, "Type")},
        ))  # fmt: skip
    return _loaded(table.path, samples)


def read_prompts(path: _Path) -> Loaded:
    """Prompts from any table with a prompt-like column (and an optional `id` column)."""
    table = read_table(path)
    column = table.pick(PROMPT_COLUMNS, "prompt")
    ids = "id" in table.columns
    samples = [
        Sample(id=cell(row, "id") if ids and cell(row, "id") else str(i),
               input=(user(_text(row, column, where)),))
        for i, (where, row) in enumerate(table.rows, 1)
    ]  # fmt: skip
    return _loaded(table.path, samples)
