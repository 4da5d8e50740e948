"""Training and held-out splits: read a dataset, hold records out (seeded), encode both sides.

Every stage that trains on a dataset (SFT, reward models, the DPO family) reads and splits it the
same way: the held-out records come from `data.eval_path`, else from a seeded `data.eval_fraction`
of the training file, else there are none.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from alignlab.errors import DataError

if TYPE_CHECKING:
    from alignlab.config import DataConfig

T = TypeVar("T")
R = TypeVar("R")
Log = Callable[[str], None]


def holdout(items: Sequence[T], fraction: float, seed: int = 0,
            min_count: int = 0) -> tuple[list[T], list[T]]:
    """(train, held-out): a seeded `fraction` of `items`, order kept. When fraction > 0, at least one
    item and at least `min_count` of them, but never more than a fifth for the minimum's sake."""
    if fraction <= 0 or len(items) < 2:
        return list(items), []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(1, int(len(items) * fraction), min(min_count, len(items) // 5))])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


@dataclass(frozen=True)
class EncodedSplit(Generic[T]):
    train: list[T]
    eval: list[T]
    skipped_records: int  # malformed records skipped (data.skip_invalid)
    dropped: int  # training records with nothing left to learn from after encoding


@dataclass(frozen=True)
class RecordSplit:
    train: list[Any]
    eval: list[Any]
    skipped_records: int


def split_records(records: list, data: DataConfig, read: Callable, min_held: int = 0) -> tuple[list, list]:
    """(train, eval) records: the eval file (read with `read`), a seeded eval_fraction (at least
    `min_held` records, see `holdout`), or no eval set."""
    if data.eval_path:
        return records, read(data.eval_path, data.format, skip_invalid=data.skip_invalid).records
    return holdout(records, data.eval_fraction, min_count=min_held)


def read_split(read: Callable, data: DataConfig, log: Log, min_held: int = 0) -> RecordSplit:
    """The records of `data` read with `read` (a reader of `alignlab.data.readers`), split."""
    result = read(data.path, data.format, split=data.split, skip_invalid=data.skip_invalid, limit=data.limit)
    if result.skipped:
        log(f"skipped {result.skipped} malformed records of {data.path}")
    if result.excluded:  # KTO records read as conversations: only a desirable completion is a demonstration
        log(f"left out {result.excluded} record{'s' * (result.excluded != 1)} labelled undesirable "
            f"(label false) in {data.path}; only the desirable ones are demonstrations")
    train, held = split_records(result.records, data, read, min_held)
    return RecordSplit(train, held, result.skipped)


def encode_split(
    records: RecordSplit, encode: Callable[[R], T | None], data: DataConfig, *, what: str, why: str, log: Log
) -> EncodedSplit[T]:
    """Encode both sides with `encode` (None drops a record); say how many training records were
    dropped and why, and fail when none is left."""
    train = [encode(r) for r in records.train]
    kept = [x for x in train if x is not None]
    dropped = len(train) - len(kept)
    if dropped:
        log(f"dropped {dropped} {what} ({why})")
    if not kept:
        raise DataError(f"{data.path}: no usable {what} left (check the data or raise data.max_length)")
    held = [x for x in (encode(r) for r in records.eval) if x is not None]
    return EncodedSplit(kept, held, records.skipped_records, dropped)
