"""`Labeller`: anything that turns pairs of responses into `PreferencePair`s.

The lab's simulated labellers (`alignlab.lab.simulated`), the AI labeller (`feedback.rlaif.AILabeller`)
and exported human labels (`RecordedLabels`: the labelling app's export or any `PreferencePair`
file) are interchangeable sources of preference data: each takes `PairToLabel`s and returns a
`LabelResult` with one pair per item it could label and the items it could not, with the reason.

Pairs are matched across sources by id, or by content: `pair_key` hashes the prompt and the two
responses regardless of their order, so a label made with (x, y) matches an item (y, x).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from alignlab.data.schema import Message, PreferencePair


def messages_json(messages: Sequence[Message | Mapping[str, Any]]) -> str:
    """Canonical JSON of turns (`Message`s or their `to_json()` dicts): equal turns, equal strings."""
    turns = [m.to_json() if isinstance(m, Message) else dict(m) for m in messages]
    return json.dumps(turns, sort_keys=True, ensure_ascii=False)


def pair_key(prompt: Sequence[Message], a: Sequence[Message], b: Sequence[Message]) -> str:
    """Content id of a comparison: sha256 of the prompt and the two responses in sorted order (16 hex)."""
    text = json.dumps([messages_json(prompt), *sorted([messages_json(a), messages_json(b)])])
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PairToLabel:
    """A prompt and two responses to compare; `first` / `second` is only the order they came in."""

    prompt: tuple[Message, ...]
    first: tuple[Message, ...]
    second: tuple[Message, ...]
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.prompt:
            raise ValueError("a pair to label needs a prompt")
        for name, turns in (("first", self.first), ("second", self.second)):
            if not turns or turns[0].role != "assistant":
                raise ValueError(f"response '{name}' must start with an assistant turn")

    @classmethod
    def from_pair(cls, pair: PreferencePair) -> PairToLabel:
        """An existing pair to relabel: chosen as first, rejected as second (its label is ignored)."""
        return cls(tuple(pair.prompt), tuple(pair.chosen), tuple(pair.rejected), pair.id, dict(pair.metadata))

    @property
    def key(self) -> str:
        return pair_key(self.prompt, self.first, self.second)


@dataclass(frozen=True)
class Skipped:
    """An item a labeller returned no pair for."""

    index: int
    id: str | None
    reason: str


@dataclass
class LabelResult:
    pairs: list[PreferencePair]
    skipped: list[Skipped] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # audit rows, for labellers that keep them


@runtime_checkable
class Labeller(Protocol):
    """A source of preference labels; `id` is what its pairs carry as `annotator`."""

    @property
    def id(self) -> str: ...

    def label(self, items: Sequence[PairToLabel]) -> LabelResult: ...


class RecordedLabels:
    """Labels already made (e.g. exported human labels), looked up by item id or by content.

    `annotator` keeps only that annotator's labels. An item matched by several labels (several
    annotators, no aggregation) is skipped as ambiguous rather than resolved by a guess.
    """

    def __init__(self, pairs: Sequence[PreferencePair], id: str = "recorded", annotator: str | None = None):
        self._id = id
        kept = [p for p in pairs if annotator is None or p.annotator == annotator]
        self._by_id = {p.id: p for p in kept if p.id is not None}
        self._by_key: dict[str, list[PreferencePair]] = defaultdict(list)
        for p in kept:
            self._by_key[pair_key(p.prompt, p.chosen, p.rejected)].append(p)

    @property
    def id(self) -> str:
        return self._id

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())

    def find(self, item_id: str | None, key: str) -> tuple[PreferencePair | None, str]:
        """The recorded pair for an item, or None and why not."""
        by_id = self._by_id.get(item_id) if item_id is not None else None
        if by_id is not None and pair_key(by_id.prompt, by_id.chosen, by_id.rejected) == key:
            return by_id, "matched by id"
        found = self._by_key.get(key, [])
        if len(found) == 1:
            return found[0], "matched by content"
        if found:
            return None, f"{len(found)} recorded labels match; keep one annotator's or an aggregated export"
        return None, "no recorded label"

    def label(self, items: Sequence[PairToLabel]) -> LabelResult:
        pairs, skipped = [], []
        for i, item in enumerate(items):
            pair, why = self.find(item.id, item.key)
            if pair is None:
                skipped.append(Skipped(i, item.id, why))
            else:
                pairs.append(pair)
        return LabelResult(pairs, skipped)
