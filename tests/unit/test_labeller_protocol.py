"""One `Labeller` protocol for every source of preference labels: the lab's simulated labellers (through
their adapter), exported human labels (`RecordedLabels`) and the AI labeller (tested in test_ai_labeller)."""

from __future__ import annotations

import pytest

from alignlab.data.schema import PreferencePair, assistant, user
from alignlab.feedback.labeller import Labeller, PairToLabel, RecordedLabels, pair_key
from alignlab.lab.labellers import Comparison, LabellerConfig, label
from alignlab.lab.sample import Gold, Sample
from alignlab.lab.simulated import SimulatedLabeller

GOLD = "Brindle lies on the river Osk."
WRONG = "Brindle lies on the river Tell."
RIVER = Sample("s0", "answerable", "river", "eval", (user("Which river runs through Brindle?"),),
               Gold("answer", GOLD, answer="Osk", distractors=("Tell", "Vane")))


def _item(first: str, second: str, id: str | None = None, prompt=RIVER.messages) -> PairToLabel:
    return PairToLabel(tuple(prompt), (assistant(first),), (assistant(second),), id)


def test_pair_key_ignores_the_order_of_the_responses():
    a, b = _item(GOLD, WRONG), _item(WRONG, GOLD)
    assert a.key == b.key == pair_key(RIVER.messages, [assistant(WRONG)], [assistant(GOLD)])
    assert a.key != _item(GOLD, "Brindle lies on the river Vane.").key


def test_pairs_to_label_are_checked_and_made_from_preference_pairs():
    with pytest.raises(ValueError, match="must start with an assistant turn"):
        PairToLabel((user("q"),), (user("x"),), (assistant("y"),))
    pair = PreferencePair(prompt=[user("q")], chosen=[assistant("x")], rejected=[assistant("y")], id="p",
                          tie=True, metadata={"k": 1})
    item = PairToLabel.from_pair(pair)
    assert (item.first, item.second, item.id, item.metadata) == (
        (assistant("x"),),
        (assistant("y"),),
        "p",
        {"k": 1},
    )


def test_the_lab_simulated_labeller_is_a_labeller_through_its_adapter():
    cfg = LabellerConfig("careful", noise=0.1, seed=3)
    labeller = SimulatedLabeller(cfg, [RIVER])
    assert isinstance(labeller, Labeller) and labeller.id == "careful"
    items = [_item(GOLD, WRONG, id=f"i{k}") for k in range(20)] + [
        _item(GOLD, WRONG, prompt=[user("unknown")])
    ]
    result = labeller.label(items)
    # The same judgements as the lab's own function, with the items' ids.
    direct = label(cfg, [Comparison(RIVER, GOLD, WRONG)] * 20)
    assert [p.chosen for p in result.pairs] == [p.chosen for p in direct]
    assert [p.confidence for p in result.pairs] == [p.confidence for p in direct]
    assert [p.id for p in result.pairs] == [f"i{k}" for k in range(20)]
    assert all(p.annotator == "careful" for p in result.pairs)
    assert all(p.chosen == [assistant(GOLD)] for p in result.pairs)  # the gold answer beats a falsehood
    assert [(s.index, s.reason) for s in result.skipped] == [(20, "prompt is not a lab sample")]


def test_recorded_labels_are_a_labeller_matched_by_id_or_content():
    human = [
        PreferencePair(prompt=list(RIVER.messages), chosen=[assistant(GOLD)], rejected=[assistant(WRONG)],
                       id="h-1", annotator="ann"),
        PreferencePair(prompt=[user("other")], chosen=[assistant("u")], rejected=[assistant("v")], id="h-2",
                       annotator="ann"),
    ]
    recorded = RecordedLabels(human, id="humans")
    assert isinstance(recorded, Labeller) and recorded.id == "humans" and len(recorded) == 2
    items = [_item(WRONG, GOLD), PairToLabel((user("other"),), (assistant("v"),), (assistant("u"),), "h-2"),
             _item(GOLD, "something else")]
    result = recorded.label(items)
    assert [p.id for p in result.pairs] == ["h-1", "h-2"]
    assert [(s.index, s.reason) for s in result.skipped] == [(2, "no recorded label")]
    assert recorded.find("h-2", items[1].key)[1] == "matched by id"
    assert recorded.find(None, items[0].key)[1] == "matched by content"
    assert RecordedLabels(human, annotator="someone else").label(items).pairs == []
