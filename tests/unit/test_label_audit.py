"""Auditing AI labels against reference labels, on a hand-worked example.

Seven pairs (x_i, y_i); x_i sorts before y_i, so in order-free terms x is r1 and y is r2. The
scripted judge's raw answers (order AB shows x as A, order BA shows y as A) and the reference:

    pair  AB  BA   AI label      reference
    0     A   B    x   (r1)      x   (r1)   agree
    1     B   A    y   (r2)      x   (r1)   disagree
    2     A   A    tie           y   (r2)   disagree (a position-following pair)
    3     A   B    x   (r1)      tie        disagree
    4     B   A    y   (r2)      y   (r2)   agree
    5     ??? B    unparseable   x          not compared
    6     A   B    x             (none)     unmatched

Compared (matched and labelled): 0-4. Accuracy over decisive references (0, 1, 2, 4): 2 / 4.
Agreement over all five: 2 / 5. Cohen's kappa: p_o = 0.4; both raters have marginals r1 2/5,
r2 2/5, tie 1/5, so p_e = (4 + 4 + 1) / 25 = 0.36 and kappa = (0.4 - 0.36) / 0.64 = 0.0625.
Position bias: of the six pairs with both orders decisive (0-4, 6), one (2) followed the position:
1 / 6. Raw picks of (A): 0 AB, 1 BA, 2 AB, 2 BA, 3 AB, 4 BA, 6 AB = 7 of 13 decisive. Unparseable:
1 / 7.
"""

from __future__ import annotations

import pytest
from judge_support import TableJudge

from alignlab.data.schema import PreferencePair, assistant, user
from alignlab.feedback.audit import audit_labels
from alignlab.feedback.constitution import Constitution, Principle
from alignlab.feedback.judge import AIJudge
from alignlab.feedback.labeller import PairToLabel
from alignlab.feedback.rlaif import label_pairs
from alignlab.io import read_jsonl

RAW = {
    0: ("A", "B"),
    1: ("B", "A"),
    2: ("A", "A"),
    3: ("A", "B"),
    4: ("B", "A"),
    5: ("???", "B"),
    6: ("A", "B"),
}
REFERENCE = {0: "x", 1: "x", 2: "y", 3: "tie", 4: "y", 5: "x"}
CONSTITUTION = Constitution(name="c", principles=(Principle(id="better", comparison="Which is better?"),))


def _x(i):
    return f"a-response {i}"


def _y(i):
    return f"b-response {i}"


def _reference(i: int) -> PreferencePair:
    """Even pairs carry the item's id; odd ones another id, so they are matched by content (pair 3, a
    tie, is stored with y first, the other way round from the item)."""
    x, y = [assistant(_x(i))], [assistant(_y(i))]
    label = REFERENCE[i]
    chosen, rejected = (y, x) if label == "y" or (label == "tie" and i % 2) else (x, y)
    return PreferencePair(prompt=[user(f"q{i}")], chosen=chosen, rejected=rejected, tie=label == "tie",
                          id=f"p{i}" if i % 2 == 0 else f"human-{i}", annotator="h1")


@pytest.fixture
def audit(tmp_path):
    replies = {}
    for i, (ab, ba) in RAW.items():
        replies[_x(i)] = f"Answer: {ab}" if ab != "???" else "Hard to say."
        replies[_y(i)] = f"Answer: {ba}"
    items = [PairToLabel((user(f"q{i}"),), (assistant(_x(i)),), (assistant(_y(i)),), id=f"p{i}") for i in RAW]
    path = tmp_path / "labels.jsonl"
    label_pairs(AIJudge("ai", generator=TableJudge(replies)), items, CONSTITUTION, audit_path=path)
    reference = [_reference(i) for i in REFERENCE] + [
        PreferencePair(prompt=[user("other")], chosen=[assistant("u")], rejected=[assistant("v")], id="other")
    ]
    return audit_labels(read_jsonl(path), reference)


def test_counts_and_matching(audit):
    assert audit["rows"] == 7 and audit["reference_pairs"] == 7
    assert audit["constitutions"] == [CONSTITUTION.content_hash()] and audit["judges"] == ["ai"]
    assert audit["matched"] == 6 and audit["unmatched"] == {"no recorded label": 1}
    assert audit["compared"] == 5
    assert audit["ai_labels"] == {"r1": 2, "r2": 2, "tie": 1}
    assert audit["reference_labels"] == {"r1": 2, "r2": 2, "tie": 1}


def test_accuracy_agreement_and_kappa_match_the_hand_computation(audit):
    assert audit["accuracy"]["value"] == pytest.approx(0.5) and audit["accuracy"]["n"] == 4
    assert audit["accuracy"]["low"] < 0.5 < audit["accuracy"]["high"]
    assert audit["agreement"]["value"] == pytest.approx(0.4) and audit["agreement"]["n"] == 5
    assert audit["cohen_kappa"]["value"] == pytest.approx(0.0625)
    assert (
        audit["cohen_kappa"]["n"] == 5
        and audit["cohen_kappa"]["low"] <= 0.0625 <= audit["cohen_kappa"]["high"]
    )


def test_position_bias_and_unparseable_rates(audit):
    assert (
        audit["position_bias_rate"]["value"] == pytest.approx(1 / 6) and audit["position_bias_rate"]["n"] == 6
    )
    assert (
        audit["first_shown_rate"]["value"] == pytest.approx(7 / 13) and audit["first_shown_rate"]["n"] == 13
    )
    assert audit["unparseable_rate"]["value"] == pytest.approx(1 / 7)
    assert audit["failed_rate"]["value"] == 0.0


def test_disagreements_are_listed_with_the_judges_replies(audit):
    rows = {d["id"]: d for d in audit["disagreements"]}
    assert set(rows) == {"p1", "p2", "p3"}
    assert rows["p2"]["ai_label"] == "tie" and rows["p2"]["reference_chosen"] == [
        {"role": "assistant", "content": _y(2)}
    ]
    assert rows["p3"]["reference_tie"] and rows["p3"]["replies"] == {"AB": "Answer: A", "BA": "Answer: B"}
    assert rows["p1"]["reference_id"] == "human-1" and rows["p1"]["principle"] == "better"


def test_several_reference_labels_for_one_pair_are_ambiguous_unless_one_annotator_is_chosen():
    items = [PairToLabel((user("q0"),), (assistant(_x(0)),), (assistant(_y(0)),), id="p0")]
    _, report = label_pairs(AIJudge("ai", generator=TableJudge({_x(0): "Answer: A", _y(0): "Answer: B"})),
                            items, CONSTITUTION)
    h1 = PreferencePair(
        prompt=[user("q0")], chosen=[assistant(_x(0))], rejected=[assistant(_y(0))], annotator="h1"
    )
    h2 = PreferencePair(
        prompt=[user("q0")], chosen=[assistant(_y(0))], rejected=[assistant(_x(0))], annotator="h2"
    )
    both = audit_labels(report.records, [h1, h2])
    assert both["matched"] == 0 and list(both["unmatched"]) == [
        "2 recorded labels match; keep one annotator's or an aggregated export"
    ]
    assert audit_labels(report.records, [h1, h2], annotator="h2")["agreement"]["value"] == 0.0
