"""AI preference labels (RL-CAI, Bai et al. 2022, arXiv:2212.08073, section 4; RLAIF, Lee et al. 2023,
arXiv:2309.00267): a judge compares two responses under a constitution's principle, in both orders.

For each pair (x, y) a principle with a comparison question is drawn (seeded per pair, so the draw
does not depend on batching or resume), and the judge answers it twice: order AB shows x as (A),
order BA shows y as (A). With p_ab = P(A | AB) and p_ba = P(A | BA), the probability that x is
better, corrected for position in each order and averaged, is

    p = (p_ab + (1 - p_ba)) / 2            (`combine_orders`)

so a judge that always prefers position (A) gets p = 0.5, and swapping x and y gives 1 - p: the
label does not depend on the order the pair came in. Each order's probability may first be clamped
(`clamp=(0.4, 0.6)`: Bai et al. clamp chain-of-thought probabilities, which are near 0 or 1).
`|p - 0.5| <= tie_band` is a tie; otherwise the better one is chosen with confidence max(p, 1 - p).

A pair with an order that failed (backend error) or could not be parsed is not labelled: it is
counted and reported, and a label from one order alone would keep the position bias the second
order exists to cancel. Every judgement is one `judgement` row of the audit JSONL (prompt,
responses, principle, both orders' replies and probabilities, p, the label, the constitution hash),
which doubles as the resume journal: a re-run with the same settings judges only the pairs not
done, and tries the failed ones again.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from alignlab.data.schema import Message, PreferencePair
from alignlab.errors import DataError
from alignlab.feedback.constitution import Constitution, Principle
from alignlab.feedback.journal import Journal
from alignlab.feedback.judge import AIJudge, Verdict, comparison_messages
from alignlab.feedback.labeller import LabelResult, PairToLabel, Skipped

Label = Literal["first", "second", "tie"]


def combine_orders(p_ab: float, p_ba: float) -> float:
    """P(first response better) from P(A) when it was shown as A (p_ab) and as B (p_ba): the mean
    of the two order-corrected probabilities, p_ab and 1 - p_ba."""
    return (p_ab + (1.0 - p_ba)) / 2.0


def label_of(p_first: float, tie_band: float) -> Label:
    if abs(p_first - 0.5) <= tie_band:
        return "tie"
    return "first" if p_first > 0.5 else "second"


@dataclass
class LabellingReport:
    """One audit row per pair (`records`) and the counts of what happened."""

    records: list[dict[str, Any]]
    constitution_hash: str
    judge: str
    resumed: int = 0

    def summary(self) -> dict[str, Any]:
        status = Counter(r["status"] for r in self.records)
        labels = Counter(r["label"] for r in self.records if r["label"] is not None)
        sources = Counter(o["source"] for r in self.records for o in r["orders"] if o["source"])
        return {
            "pairs": len(self.records),
            "labelled": status.get("labelled", 0),
            "ties": labels.get("tie", 0),
            "unparseable": status.get("unparseable", 0),
            "failed": status.get("failed", 0),
            "label_sources": dict(sources),
            "resumed": self.resumed,
            "judge": self.judge,
            "constitution": self.constitution_hash,
        }


def label_pairs(
    judge: AIJudge,
    items: Sequence[PairToLabel],
    constitution: Constitution,
    *,
    seed: int = 0,
    tie_band: float = 0.05,
    clamp: tuple[float, float] | None = None,
    audit_path: str | os.PathLike | None = None,
    chunk_size: int = 64,
) -> tuple[list[PreferencePair], LabellingReport]:
    """Label `items` with `judge` under `constitution`; see the module doc.

    Returns the labelled pairs in input order (ties included, marked `tie`) and the report. With an
    `audit_path`, rows are appended chunk by chunk and a re-run with the same settings resumes.
    """
    if not 0 <= tie_band < 0.5:
        raise ValueError(f"tie_band must be in [0, 0.5), got {tie_band}")
    if clamp is not None and not 0 <= clamp[0] <= 0.5 <= clamp[1] <= 1:
        raise ValueError(f"clamp must be (low, high) with 0 <= low <= 0.5 <= high <= 1, got {clamp}")
    principles = constitution.comparison_principles()
    chash = constitution.content_hash()
    ids = _item_ids(items)
    settings = {"kind": "rlaif", "constitution": chash, "judge": judge.id, "cot": judge.cot, "seed": seed,
                "params": asdict(judge.sampling), "tie_band": tie_band, "clamp": clamp}
    journal = Journal(audit_path, settings)
    # Failed judgements are tried again (a backend that was down may be back); unparseable ones are
    # answers, and stay.
    done = {r["id"] for r in journal.rows if r["status"] != "failed"}
    todo = [i for i, pid in enumerate(ids) if pid not in done]
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        drawn = [_draw(seed, ids[i], principles) for i in chunk]
        prompts = []
        for i, p in zip(chunk, drawn, strict=True):
            it = items[i]
            prompts.append(comparison_messages(it.prompt, it.first, it.second, p.comparison or "", judge.cot))
            prompts.append(comparison_messages(it.prompt, it.second, it.first, p.comparison or "", judge.cot))
        verdicts = judge.judge(prompts, seed=_chunk_seed(seed, ids[chunk[0]]))
        journal.append(
            _record(
                items[i], i, ids[i], p, verdicts[2 * k], verdicts[2 * k + 1], clamp, tie_band, chash, judge
            )
            for k, (i, p) in enumerate(zip(chunk, drawn, strict=True))
        )
    by_id = {r["id"]: r for r in journal.rows}  # the latest row of each pair
    records = [by_id[pid] for pid in ids]
    pairs = [pair_from_record(r) for r in records if r["status"] == "labelled"]
    return pairs, LabellingReport(records, chash, judge.id, resumed=len(ids) - len(todo))


def _item_ids(items: Sequence[PairToLabel]) -> list[str]:
    ids = [it.id if it.id is not None else it.key for it in items]
    seen: dict[str, int] = {}
    for i, pid in enumerate(ids):
        if pid in seen:
            raise DataError(
                f"pairs {seen[pid]} and {i} have the same id {pid!r} (their id or, without one, their prompt "
                "and responses); give every pair its own id or drop the duplicate"
            )
        seen[pid] = i
    return ids


def _draw(seed: int, item_id: str, principles: Sequence[Principle]) -> Principle:
    return random.Random(f"alignlab-rlaif-{seed}-{item_id}").choice(principles)


def _chunk_seed(seed: int, first_id: str) -> int:
    return random.Random(f"alignlab-rlaif-sampling-{seed}-{first_id}").getrandbits(31)


def _clamped(p: float, clamp: tuple[float, float] | None) -> float:
    return p if clamp is None else min(max(p, clamp[0]), clamp[1])


def _record(
    item: PairToLabel, index: int, item_id: str, principle: Principle, ab: Verdict, ba: Verdict,
    clamp: tuple[float, float] | None, tie_band: float, chash: str, judge: AIJudge,
) -> dict[str, Any]:
    statuses = {ab.status, ba.status}
    status = "failed" if "failed" in statuses else "unparseable" if "unparseable" in statuses else "labelled"
    p = None
    if status == "labelled":
        assert ab.p_a is not None and ba.p_a is not None
        p = combine_orders(_clamped(ab.p_a, clamp), _clamped(ba.p_a, clamp))
    return {
        "kind": "judgement", "id": item_id, "index": index, "key": item.key,
        "principle": principle.id,
        "prompt": [m.to_json() for m in item.prompt],
        "first": [m.to_json() for m in item.first],
        "second": [m.to_json() for m in item.second],
        "metadata": dict(item.metadata),
        "orders": [{"order": "AB", **ab.to_json()}, {"order": "BA", **ba.to_json()}],
        "p_first": p,
        "label": label_of(p, tie_band) if p is not None else None,
        "status": status,
        "judge": judge.id,
        "cot": judge.cot,
        "constitution": chash,
    }


def pair_from_record(r: dict[str, Any]) -> PreferencePair:
    """The `PreferencePair` of a labelled audit row (a tie keeps the input order)."""
    first, second = ([Message.model_validate(m) for m in r[k]] for k in ("first", "second"))
    chosen_is_first = r["label"] in ("first", "tie")
    p = r["p_first"]
    meta = {**r["metadata"], "p_first": round(p, 6), "p_a": [o["p_a"] for o in r["orders"]],
            "chosen_is_first": chosen_is_first,
            "label_source": "+".join(sorted({o["source"] for o in r["orders"]})),
            "constitution": r["constitution"]}
    if r["cot"]:
        meta["reasoning"] = {o["order"]: o["reply"] for o in r["orders"]}
    return PreferencePair(
        prompt=[Message.model_validate(m) for m in r["prompt"]],
        chosen=first if chosen_is_first else second,
        rejected=second if chosen_is_first else first,
        tie=r["label"] == "tie",
        confidence=0.5 if r["label"] == "tie" else round(max(p, 1 - p), 6),
        annotator=r["judge"],
        reason=r["principle"],
        id=r["id"],
        metadata=meta,
    )


@dataclass
class AILabeller:
    """The AI labeller as a `feedback.labeller.Labeller`: `label_pairs` with fixed settings."""

    judge: AIJudge
    constitution: Constitution
    seed: int = 0
    tie_band: float = 0.05
    clamp: tuple[float, float] | None = None
    audit_path: str | os.PathLike | None = None

    @property
    def id(self) -> str:
        return self.judge.id

    def label(self, items: Sequence[PairToLabel]) -> LabelResult:
        pairs, report = label_pairs(
            self.judge,
            items,
            self.constitution,
            seed=self.seed,
            tie_band=self.tie_band,
            clamp=self.clamp,
            audit_path=self.audit_path,
        )
        skipped = [
            Skipped(i, r["id"], r["status"])
            for i, r in enumerate(report.records)
            if r["status"] != "labelled"
        ]
        return LabelResult(pairs, skipped, report.records)
