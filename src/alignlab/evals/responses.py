"""Score existing responses without a model: a `Generator` that answers from a CSV / JSONL file.

Columns: the response (`response`, `completion`, `output` or `generation`), and what to match on:
- by sample id (`id` column; optional `variant` for suites asked several ways, optional `turn`,
  0-based, for multi-turn suites), or
- by prompt text (`prompt` column), compared with the last user turn after collapsing whitespace
  and case (so XSTest's completion files, with `prompt` and `completion`, work as they are).
`match="auto"` uses ids when the file has an `id` column. Several rows for one key are the n
samples of that prompt. A prompt with no row is a failed generation (an error row, counted); a
file without the needed columns is a `DataError` naming the file and the columns.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from alignlab.errors import DataError
from alignlab.evals.tables import cell, read_table
from alignlab.generation.base import Completion, Prompt, SamplingParams

RESPONSE_COLUMNS = ("response", "completion", "output", "generation")
Match = Literal["auto", "id", "prompt"]
Key = tuple[str, str, int]  # (sample id, variant, turn)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _last_user(prompt: Prompt) -> str:
    return next((m.content for m in reversed(prompt) if m.role == "user"), "")


class ResponsesFile:
    """A `Generator` (and keyed generator) over the responses in `path`."""

    def __init__(self, path: str | os.PathLike, *, match: Match = "auto", response_column: str | None = None):
        table = read_table(path)
        self.path = table.path
        column = response_column or table.pick(RESPONSE_COLUMNS, "response")
        table.require((column,), "existing responses")
        if match == "auto":
            match = "id" if "id" in table.columns else "prompt"
        if match not in ("id", "prompt"):
            raise DataError(f"{self.path}: match must be 'auto', 'id' or 'prompt', got {match!r}")
        table.require(("id",) if match == "id" else ("prompt",), f"matching responses by {match}")
        self.match = match
        self._by_id: dict[tuple[str, str, int], list[str]] = defaultdict(list)
        self._by_prompt: dict[str, list[str]] = defaultdict(list)
        for where, row in table.rows:
            text = "" if row.get(column) is None else str(row[column])
            if match == "id":
                turn = cell(row, "turn") or "0"
                if not turn.isdigit():
                    raise DataError(
                        f"{where}: 'turn' must be a whole number (0 for the first reply), got {turn!r}"
                    )
                self._by_id[(cell(row, "id"), cell(row, "variant"), int(turn))].append(text)
            else:
                self._by_prompt[_norm(cell(row, "prompt"))].append(text)

    def _found(self, texts: list[str], params: SamplingParams) -> list[Completion]:
        return [Completion(text=t.strip()) for t in texts[: params.n]]

    def _missing(self, what: str) -> list[Completion]:
        return [Completion(text="", finish_reason="error", error=f"{self.path}: no response for {what}")]

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """Responses matched by the prompt's last user turn (ids are unknown here)."""
        if self.match == "id":
            raise DataError(
                f"{self.path}: responses are matched by sample id; they can only answer a suite's samples"
            )
        out = []
        for p in prompts:
            texts = self._by_prompt.get(_norm(_last_user(p)))
            out.append(
                self._found(texts, params) if texts else self._missing(f"prompt {_last_user(p)[:80]!r}")
            )
        return out

    def generate_keyed(
        self, keys: Sequence[Key], prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[list[Completion]]:
        """Responses for the given (sample id, variant, turn) keys, or by prompt text."""
        if self.match == "prompt":
            return self.generate(prompts, params)
        out = []
        for sample_id, variant, turn in keys:
            texts = self._by_id.get((sample_id, variant, turn)) or self._by_id.get((sample_id, "", turn))
            what = f"sample id {sample_id!r}" + (f", variant {variant!r}" if variant != "default" else "")
            out.append(
                self._found(texts, params)
                if texts
                else self._missing(what + (f", turn {turn}" if turn else ""))
            )
        return out
