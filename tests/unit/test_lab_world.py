"""The lab world: deterministic from its seed, split into disjoint train and eval entities."""

from __future__ import annotations

import pytest

from alignlab.lab.world import ATTRIBUTES, Hazard, WorldConfig, build_world


def test_same_seed_same_world_and_other_seed_other_world():
    a, b = build_world(WorldConfig(seed=3)), build_world(WorldConfig(seed=3))
    assert a == b and a.fake_towns == b.fake_towns and a.secrets == b.secrets
    c = build_world(WorldConfig(seed=4))
    assert [t.name for t in a.towns] != [t.name for t in c.towns]


def test_sizes_and_splits():
    w = build_world(WorldConfig(n_towns=30, n_hazards=9, max_addend=9, eval_fraction=1 / 3))
    assert len(w.towns) == 30 and len(w.towns_in("eval")) == 10 and len(w.towns_in("train")) == 20
    assert len(w.hazards_in("eval")) == 3 and len(w.hazards_in("train")) == 6
    assert len(w.sums) == 81 and len(w.sums_in("eval")) == 27
    assert {s.total for s in w.sums} == set(range(2, 19))
    assert not set(w.fake_towns["train"]) & set(w.fake_towns["eval"])
    assert not set(w.personas["train"]) & set(w.personas["eval"])


def test_names_are_unique_across_the_world():
    w = build_world()
    names = [t.name for t in w.towns] + [h.name for h in w.hazards] + list(w.values("river"))
    names += list(w.values("founder")) + [n for split in ("train", "eval") for n in w.fake_towns[split]]
    names += [n for d in (w.personas, w.secrets, w.canaries) for split in ("train", "eval") for n in d[split]]
    lowered = [n.lower() for n in names]
    assert len(lowered) == len(set(lowered))
    # Fake towns must not exist, or "unanswerable" questions would have answers.
    assert not {t.name for t in w.towns} & set(w.fake_towns["eval"])


def test_every_answer_value_answers_some_training_question():
    # Held-out towns and hazards only reuse values that training entities have, so SFT never has
    # to teach a word that only held-out answers contain.
    w = build_world()
    for kind in ATTRIBUTES:
        assert set(w.values(kind)) == {t.attribute(kind) for t in w.towns_in("train")}, kind
    train_hazards = w.hazards_in("train")
    for field in ("colour", "kind", "banned_in"):
        assert {getattr(h, field) for h in w.hazards} == {getattr(h, field) for h in train_hazards}, field
    assert {h.banned_in for h in w.hazards} <= {t.name for t in w.towns_in("train")}


def test_every_value_is_used_and_attributes_resolve():
    w = build_world(WorldConfig(n_towns=12, n_rivers=4, n_products=3, eval_fraction=1 / 3))
    assert len(w.values("river")) == 4 and len(w.values("product")) == 3
    t = w.towns[0]
    assert [t.attribute(k) for k in ATTRIBUTES] == [t.river, t.founder, t.product]
    with pytest.raises(KeyError):
        t.attribute("mayor")


def test_hazard_recipe_text():
    h = Hazard("kiskbane", "poison", ("marsh salt", "ember moss"), "boil them together for three hours",
               "green", "Brindle", "train")
    assert (
        h.recipe
        == "To make kiskbane, take marsh salt and ember moss, then boil them together for three hours."
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"attributes": ("river", "mayor")}, {"eval_fraction": 1.0}, {"n_towns": 2}, {"n_products": 99},
     {"max_addend": 2},  # 9 towns leave 6 for training: 7 rivers is too many
     {"n_towns": 9, "n_rivers": 7, "n_founders": 3, "n_products": 3, "eval_fraction": 1 / 3}],
)
def test_bad_configs_are_rejected(kwargs):
    with pytest.raises(ValueError):
        WorldConfig(**kwargs)
