"""Statistics on a hand-worked label pool, the statistics page, and the database schema."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from labelling_support import Lab, make_pairs
from sqlalchemy import inspect, select, text

from alignlab.errors import ConfigError
from alignlab.labelling import migrations, queue
from alignlab.labelling.auth import Auth
from alignlab.labelling.db import make_engine
from alignlab.labelling.models import Assignment, Base, Pair, User, utcnow
from alignlab.labelling.stats import compute_stats

# Three labellers on two overlap pairs and one gold item (gold: a), in import terms:
#   p0: a a a    p1: a b tie    g0: a b a
# Pairwise agreement: (1 + 0 + 1/3) / 3 = 4/9.
# Fleiss: ratings a 6, b 2, tie 1 of 9 -> P_e = 41/81; kappa = (36/81 - 41/81) / (40/81) = -1/8.
# Krippendorff (nominal): n_a = 6, n_b = 2, n_tie = 1, n = 9; D_o = 5/9 and D_e = 2 (12 + 6 + 2) / 72 = 5/9
#   -> alpha = 0.
# Cohen: ann-bob p_o = 1/3 = p_e -> 0; ann-cy p_o = 2/3 = p_e -> 0; bob-cy (1/3 - 2/9) / (7/9) = 1/7.
VOTES = {"ann": ["a", "a", "a"], "bob": ["a", "b", "b"], "cy": ["a", "tie", "a"]}
# bob sees every pair swapped (response b on the left), the others never. Decisive labels that
# picked the left response: ann 3 of 3, bob 2 of 3 (his b's), cy 2 of 2 -> 7 / 8.
SWAPPED = {"ann": False, "bob": True, "cy": False}


def _seed_pool(lab: Lab) -> None:
    lab.import_pairs(make_pairs(2), labels_per_pair=3)
    lab.import_pairs(make_pairs(1, prefix="g", gold="a"), round_name="r1")
    for name in VOTES:
        lab.add_user(name)
    with lab.db() as db:
        for name, choices in VOTES.items():
            user = db.scalar(select(User).where(User.name == name))
            for ext_id, choice in zip(("p0", "p1", "g0"), choices, strict=True):
                pair = db.scalar(select(Pair).where(Pair.ext_id == ext_id))
                shown = utcnow() - timedelta(seconds=30)  # 30 s on task per label -> 120 labels / hour
                a = Assignment(pair_id=pair.id, user_id=user.id, swapped=SWAPPED[name], status="pending",
                               created_at=shown)
                db.add(a)
                db.flush()
                side = {"a": "right" if a.swapped else "left",
                        "b": "left" if a.swapped else "right"}.get(choice, choice)
                queue.submit_label(db, Auth(user.id, name, "labeller", ""), a.id, queue.LabelInput(side, 3))
        db.commit()


def test_pool_statistics_equal_hand_worked_values(lab):
    _seed_pool(lab)
    with lab.db() as db:
        s = compute_stats(db)
    assert (s.labels, s.pairs_labelled, s.pairs_multi) == (9, 3, 3)
    assert s.pairwise_agreement == pytest.approx(4 / 9)
    assert s.fleiss_kappa == pytest.approx(-1 / 8)
    assert s.krippendorff_alpha == pytest.approx(0.0, abs=1e-12)
    assert s.position_bias_rate == pytest.approx(7 / 8)
    assert s.tie_rate == pytest.approx(1 / 9) and s.both_bad_rate == 0.0
    assert [(a, b, round(k, 6), n) for a, b, k, n in s.cohen] == [
        ("ann", "bob", 0.0, 3), ("ann", "cy", 0.0, 3), ("bob", "cy", round(1 / 7, 6), 3),
    ]
    by_name = {x.name: x for x in s.labellers}
    assert [(x.gold_labels, x.gold_accuracy) for x in s.labellers] == [(1, 1.0), (1, 0.0), (1, 1.0)]
    assert by_name["cy"].tie_rate == pytest.approx(1 / 3) and by_name["bob"].left_rate == pytest.approx(2 / 3)
    assert by_name["ann"].labels_per_hour == pytest.approx(120, rel=0.02)
    assert sum(n for _, n in s.per_hour) == 9


def test_statistics_page_shows_the_pool(lab):
    _seed_pool(lab)
    lab.add_user("root", "admin")
    page = lab.client("root").get("/admin/stats").text
    for stat, shown in [("labels", "9"), ("agreement", "0.444"), ("fleiss", "-0.125"), ("alpha", "0.000"),
                        ("position", "88%"), ("ties", "11%")]:
        assert f'id="stat-{stat}">{shown}<' in page, stat
    assert '<tr data-labeller="bob"><td>bob</td><td class="num">3</td>' in page
    assert "<td>bob</td><td>cy</td><td class=\"num\">3</td><td class=\"num\">0.143</td>" in page


def test_statistics_of_an_empty_pool_and_of_one_round(lab):
    with lab.db() as db:
        empty = compute_stats(db)
    assert empty.labels == 0 and math.isnan(empty.fleiss_kappa) and math.isnan(empty.krippendorff_alpha)
    _seed_pool(lab)
    with lab.db() as db:
        assert compute_stats(db, "nope").labels == 0
        assert compute_stats(db, "r1").labels == 9
    lab.add_user("root", "admin")
    assert 'id="stat-labels">0<' in lab.client("root").get("/admin/stats?round=nope").text


def test_migrated_schema_matches_the_models_and_uses_wal(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    engine = make_engine(url)
    assert migrations.upgrade(engine) == migrations.LATEST
    assert migrations.upgrade(engine) == migrations.LATEST  # a second run changes nothing
    insp = inspect(engine)
    for table in Base.metadata.sorted_tables:
        got = {c["name"]: c["nullable"] for c in insp.get_columns(table.name)}
        want = {c.name: c.nullable for c in table.columns}
        assert got == want, table.name
        got_unique = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table.name)}
        got_unique |= {tuple(i["column_names"]) for i in insp.get_indexes(table.name) if i["unique"]}
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                assert tuple(c.name for c in constraint.columns) in got_unique, (table.name, constraint)
        for column in table.columns:
            if column.unique:
                assert (column.name,) in got_unique, (table.name, column.name)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == migrations.LATEST


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'labels.sqlite'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": migrations.LATEST + 1})
    with pytest.raises(ConfigError, match="newer than this alignlab supports"):
        migrations.upgrade(engine)
    with pytest.raises(ConfigError, match="newer than this alignlab supports"):
        Lab(tmp_path)  # the app refuses it too
