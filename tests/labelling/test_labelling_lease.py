"""Assignment leases: an abandoned pair goes back to the pool after `assignment_timeout_minutes`.

Time moves through a fake clock on the app state, never by sleeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from labelling_support import Lab, Page, make_pairs
from sqlalchemy import select

from alignlab.labelling.models import Assignment, Label, Pair, utcnow
from alignlab.labelling.settings import LabellingSettings

NOTHING_LEFT = "Nothing left to label"


class FakeClock:
    """Naive-UTC time that moves only when told to."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def _lab(tmp_path, **settings) -> tuple[Lab, FakeClock]:
    lab = Lab(tmp_path, **settings)
    clock = FakeClock()
    lab.state.clock = clock
    for name in ("ann", "bob", "cy"):
        lab.add_user(name)
    return lab, clock


def _post_label(client, page: Page):
    return client.post(f"/label/{page.assignment_id}", data={"csrf_token": page.csrf, "choice": "left",
                                                             "confidence": "3"})


def _snapshot(lab: Lab) -> tuple:
    """Everything a late label could change: assignments, labels and slot counts."""
    with lab.db() as db:
        assignments = [(a.id, a.status, a.created_at, a.completed_at) for a in db.scalars(select(Assignment))]
        labels = [(x.id, x.assignment_id) for x in db.scalars(select(Label))]
        pairs = [(p.id, p.assigned) for p in db.scalars(select(Pair))]
    return assignments, labels, pairs


def _pair_slots(lab: Lab) -> list[tuple[int | None, int]]:
    with lab.db() as db:
        return [(p.target, p.assigned) for p in db.scalars(select(Pair).order_by(Pair.id))]


def test_a_lapsed_assignment_frees_the_slot_for_another_labeller(tmp_path):
    lab, clock = _lab(tmp_path, assignment_timeout_minutes=30)
    lab.import_pairs(make_pairs(1))
    ann, bob = lab.client("ann"), lab.client("bob")
    assert Page(ann.get("/label").text).assignment_id is not None
    assert NOTHING_LEFT in bob.get("/label").text
    clock.advance(31)
    assert "A-text-p0" in bob.get("/label").text
    assert [a.status for a in lab.assignments()] == ["expired", "pending"]
    assert _pair_slots(lab) == [(1, 1)]


def test_a_valid_lease_is_not_stolen_and_a_reload_keeps_it(tmp_path):
    lab, clock = _lab(tmp_path, assignment_timeout_minutes=30)
    lab.import_pairs(make_pairs(2))
    ann, bob = lab.client("ann"), lab.client("bob")
    first = Page(ann.get("/label").text).assignment_id
    clock.advance(29)
    bob_pair = Page(bob.get("/label").text).assignment_id  # the other pair, not ann's
    assert Page(ann.get("/label").text).assignment_id == first
    assert len(lab.assignments()) == 2 and bob_pair != first
    assert [a.status for a in lab.assignments()] == ["pending", "pending"]


def test_a_labeller_back_before_anyone_released_their_pair_keeps_it_with_a_new_lease(tmp_path):
    lab, clock = _lab(tmp_path, assignment_timeout_minutes=30)
    lab.import_pairs(make_pairs(1))
    ann, bob = lab.client("ann"), lab.client("bob")
    first = Page(ann.get("/label").text).assignment_id
    clock.advance(45)
    assert Page(ann.get("/label").text).assignment_id == first
    clock.advance(20)  # 65 minutes after the pair was handed out, 20 after ann came back
    assert NOTHING_LEFT in bob.get("/label").text
    assert [a.status for a in lab.assignments()] == ["pending"]


def test_a_late_label_is_accepted_while_the_pair_needs_labels(tmp_path):
    lab, clock = _lab(tmp_path, assignment_timeout_minutes=30)
    lab.import_pairs(make_pairs(1), labels_per_pair=2)
    ann, bob, cy = lab.client("ann"), lab.client("bob"), lab.client("cy")
    ann_page = Page(ann.get("/label").text)
    clock.advance(31)
    assert "A-text-p0" in bob.get("/label").text  # releases ann's slot, then takes one
    assert _pair_slots(lab) == [(2, 1)]
    assert _post_label(ann, ann_page).status_code == 303
    assert _pair_slots(lab) == [(2, 2)]
    assert NOTHING_LEFT in cy.get("/label").text  # ann's late label took the second slot back
    assert lab.label_current(bob)[1].status_code == 303
    assert sorted(x.user_id for x in lab.labels()) == sorted({a.user_id for a in lab.assignments()})
    assert [a.status for a in lab.assignments()] == ["done", "done"]


@pytest.mark.parametrize("other_labels_first", [False, True])
def test_a_late_label_on_a_full_pair_is_409_and_changes_nothing(tmp_path, other_labels_first):
    lab, clock = _lab(tmp_path, assignment_timeout_minutes=30)
    lab.import_pairs(make_pairs(1))
    ann, bob = lab.client("ann"), lab.client("bob")
    ann_page = Page(ann.get("/label").text)
    clock.advance(31)
    assert "A-text-p0" in bob.get("/label").text
    if other_labels_first:
        assert lab.label_current(bob)[1].status_code == 303
    before = _snapshot(lab)
    late = _post_label(ann, ann_page)
    assert late.status_code == 409 and "expired" in late.text
    assert _snapshot(lab) == before
    assert _pair_slots(lab) == [(1, 1)]


def test_skipping_an_expired_assignment_does_not_give_its_slot_back_twice(tmp_path):
    lab, clock = _lab(tmp_path, assignment_timeout_minutes=30)
    lab.import_pairs(make_pairs(1))
    ann, bob, cy = lab.client("ann"), lab.client("bob"), lab.client("cy")
    ann_page = Page(ann.get("/label").text)
    clock.advance(31)
    assert Page(bob.get("/label").text).assignment_id is not None
    assert ann.post(f"/label/{ann_page.assignment_id}/skip",
                    data={"csrf_token": ann_page.csrf}).status_code == 303
    assert _pair_slots(lab) == [(1, 1)]
    assert NOTHING_LEFT in cy.get("/label").text
    assert [a.status for a in lab.assignments()] == ["skipped", "pending"]


def test_gold_items_are_never_released(tmp_path):
    lab, clock = _lab(tmp_path, assignment_timeout_minutes=30)
    lab.import_pairs(make_pairs(1, prefix="g", gold="a"))
    ann, bob = lab.client("ann"), lab.client("bob")
    first = Page(ann.get("/label").text).assignment_id
    clock.advance(31)
    assert "A-text-g0" in bob.get("/label").text  # every labeller gets gold items anyway
    assert [a.status for a in lab.assignments()] == ["pending", "pending"]
    assert Page(ann.get("/label").text).assignment_id == first


@pytest.mark.parametrize("timeout", [0, None])
def test_a_disabled_lease_holds_pairs_forever(tmp_path, timeout):
    lab, clock = _lab(tmp_path, assignment_timeout_minutes=timeout)
    lab.import_pairs(make_pairs(1))
    ann, bob = lab.client("ann"), lab.client("bob")
    first = Page(ann.get("/label").text).assignment_id
    clock.advance(60 * 24 * 30)
    assert NOTHING_LEFT in bob.get("/label").text
    assert Page(ann.get("/label").text).assignment_id == first
    assert [a.status for a in lab.assignments()] == ["pending"]


def test_lease_setting_defaults_to_30_minutes_and_rejects_negative_values():
    assert LabellingSettings(db="sqlite://").assignment_lease == timedelta(minutes=30)
    assert LabellingSettings(db="sqlite://", assignment_timeout_minutes=0).assignment_lease is None
    with pytest.raises(ValueError, match="assignment_timeout_minutes"):
        LabellingSettings(db="sqlite://", assignment_timeout_minutes=-1)


def test_cli_serve_passes_the_timeout_and_documents_it(tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from alignlab.labelling.cli import label_app

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    runner = CliRunner()
    db = str(tmp_path / "labels.sqlite")
    result = runner.invoke(label_app, ["serve", "--db", db, "--assignment-timeout-minutes", "5"])
    assert result.exit_code == 0, result.output
    assert served[0].state.labelling.settings.assignment_lease == timedelta(minutes=5)
    helped = runner.invoke(label_app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert "--assignment-timeout-minutes" in helped.output
    assert runner.invoke(label_app, ["serve", "--db", db, "--assignment-timeout-minutes",
                                     "-1"]).exit_code == 2
