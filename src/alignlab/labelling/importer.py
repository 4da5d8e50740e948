"""Import response pairs to label, all or nothing: the labelling format, or any preference file.

The files are parsed by `alignlab.data.pair_files` (the labelling format and the preference formats
read through `alignlab.data.readers`, specified in docs/labelling-formats.md); this module adds
the parsed pairs to a round, with how pairs are assigned to labellers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from alignlab.data.pair_files import (  # noqa: F401  (the parsing API, as the app and its tests use it)
    FORMAT_DOC,
    KNOWN_KEYS,
    NATIVE,
    ParsedFile,
    ParsedPair,
    import_formats,
    parse_file,
    parse_lines,
    parse_record,
)
from alignlab.errors import DataError
from alignlab.labelling.models import Pair, Round


@dataclass(frozen=True)
class ImportResult:
    round_name: str
    imported: int
    gold: int
    overlap: int


def _unit_hash(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:16]


def import_pairs(
    db: Session,
    pairs: list[ParsedPair],
    source: str,
    round_name: str,
    labels_per_pair: int = 1,
    overlap: float = 0.0,
    overlap_labels: int = 3,
) -> ImportResult:
    """Add parsed pairs to round `round_name` (created if new) in the caller's transaction.

    The caller commits; on `DataError` it must roll back, so nothing of the file is kept.
    """
    if not pairs:
        raise DataError(f"{source}: no pairs to import")
    if labels_per_pair < 1:
        raise DataError(f"labels_per_pair must be at least 1, got {labels_per_pair}")
    if not 0.0 <= overlap <= 1.0:
        raise DataError(f"overlap must be a share between 0 and 1, got {overlap}")
    if overlap > 0 and overlap_labels < 2:
        raise DataError(f"overlap_labels must be at least 2 to measure agreement, got {overlap_labels}")
    if not round_name.strip() or len(round_name) > 128:
        raise DataError(f"round name {round_name!r}: use 1-128 characters")
    ids = [p.ext_id for p in pairs]
    for start in range(0, len(ids), 500):
        taken = db.scalars(select(Pair.ext_id).where(Pair.ext_id.in_(ids[start : start + 500]))).first()
        if taken is not None:
            where = next(p.where for p in pairs if p.ext_id == taken)
            raise DataError(f"{where}: pair id {taken!r} is already in the database; give it a new id")
    rnd = db.scalar(select(Round).where(Round.name == round_name))
    if rnd is None:
        rnd = Round(name=round_name, active=True)
        db.add(rnd)
        db.flush()
    plain = sorted((p for p in pairs if p.gold is None), key=lambda p: _unit_hash("overlap", p.ext_id))
    overlapped = {p.ext_id for p in plain[: round(overlap * len(plain))]}
    for p in pairs:
        target = (
            None
            if p.gold
            else (max(overlap_labels, labels_per_pair) if p.ext_id in overlapped else labels_per_pair)
        )
        db.add(
            Pair(
                ext_id=p.ext_id,
                round_id=rnd.id,
                prompt=p.prompt,
                response_a=p.response_a,
                response_b=p.response_b,
                gold=p.gold,
                target=target,
                assigned=0,
                order_key=_unit_hash("order", round_name, p.ext_id),
                meta=p.meta,
            )
        )
    db.flush()
    n_gold = sum(p.gold is not None for p in pairs)
    return ImportResult(round_name, len(pairs), n_gold, len(overlapped))
