"""The labelling flow: counterbalanced order, k labellers per pair, gold, overlap, skips, rounds, restarts."""

from __future__ import annotations

from labelling_support import Lab, Page, make_pairs
from sqlalchemy import select

from alignlab.labelling.models import Pair


def test_labels_map_shown_sides_back_to_import_order_and_record_the_order(lab):
    lab.import_pairs(make_pairs(6))
    lab.add_user("ann")
    ann = lab.client("ann")
    shown = {}
    for _ in range(6):
        page = Page(ann.get("/label").text)
        pid = page.side("left").split("-")[-1]
        shown[pid] = "a" if page.side("left").startswith("A-text") else "b"
        # Always prefer response a, wherever it is shown: every stored label must say "a".
        side = page.side_of(f"A-text-{pid}")
        resp = ann.post(f"/label/{page.assignment_id}", data={"csrf_token": page.csrf, "choice": side,
                                                              "confidence": "2"})
        assert resp.status_code == 303 and resp.headers["location"] == "/label"
    labels = lab.labels()
    assert [lab_.choice for lab_ in labels] == ["a"] * 6
    with lab.db() as db:
        ext = {p.id: p.ext_id for p in db.scalars(select(Pair)).all()}
    assert {ext[x.pair_id]: x.shown_left for x in labels} == shown
    # Counterbalancing: both orders occur, and the assignment row agrees with the label.
    assert set(shown.values()) == {"a", "b"}
    swapped = {a.id: a.swapped for a in lab.assignments()}
    assert all((x.shown_left == "b") == swapped[x.assignment_id] for x in labels)
    done = ann.get("/label")
    assert "Nothing left to label" in done.text and 'id="done-count">6<' in done.text


def test_reload_shows_the_same_pending_pair(lab):
    lab.import_pairs(make_pairs(3))
    lab.add_user("ann")
    ann = lab.client("ann")
    first, again = Page(ann.get("/label").text), Page(ann.get("/label").text)
    assert first.assignment_id == again.assignment_id and first.side("left") == again.side("left")
    assert len(lab.assignments()) == 1


def test_double_submission_is_409_and_keeps_the_first_label(lab):
    lab.import_pairs(make_pairs(2))
    lab.add_user("ann")
    ann = lab.client("ann")
    page, resp = lab.label_current(ann, "tie", 4)
    assert resp.status_code == 303
    again = ann.post(f"/label/{page.assignment_id}", data={"csrf_token": page.csrf, "choice": "left",
                                                           "confidence": "1"})
    assert again.status_code == 409 and "already done" in again.text
    skip = ann.post(f"/label/{page.assignment_id}/skip", data={"csrf_token": page.csrf})
    assert skip.status_code == 409
    [label] = lab.labels()
    assert (label.choice, label.confidence) == ("tie", 4)


def test_another_labellers_assignment_is_403_and_unknown_is_404(lab):
    lab.import_pairs(make_pairs(2))
    lab.add_user("ann")
    lab.add_user("bob")
    ann, bob = lab.client("ann"), lab.client("bob")
    ann_page = Page(ann.get("/label").text)
    bob_csrf = Page(bob.get("/label").text).csrf
    form = {"csrf_token": bob_csrf, "choice": "left", "confidence": "4"}
    assert bob.post(f"/label/{ann_page.assignment_id}", data=form).status_code == 403
    assert bob.post(f"/label/{ann_page.assignment_id}/skip", data={"csrf_token": bob_csrf}).status_code == 403
    assert bob.post("/label/999", data=form).status_code == 404
    assert lab.labels() == []
    assert [a.status for a in lab.assignments()] == ["pending", "pending"]


def test_invalid_label_forms_are_422_and_store_nothing(lab):
    lab.import_pairs(make_pairs(1))
    lab.add_user("ann")
    ann = lab.client("ann")
    page = Page(ann.get("/label").text)
    bad = [
        ({"choice": "upper", "confidence": "3"}, "choice"),
        ({"choice": "left", "confidence": "7"}, "confidence"),
        ({"choice": "left"}, "confidence"),
        ({"choice": "left", "confidence": "x"}, "whole numbers"),
        ({"choice": "left", "confidence": "2", "reasons": ["more_helpful", "prettier"]}, "prettier"),
        ({"choice": "left", "confidence": "2", "guideline_version": "3"}, "version 3 does not exist"),
        ({"choice": "left", "confidence": "2", "rationale": "x" * 5001}, "too long"),
    ]
    for data, message in bad:
        resp = ann.post(f"/label/{page.assignment_id}", data={"csrf_token": page.csrf, **data})
        assert resp.status_code == 422 and message in resp.text, data
    assert lab.labels() == [] and lab.assignments()[0].status == "pending"


def test_label_fields_are_stored(lab):
    lab.import_pairs(make_pairs(1))
    lab.add_user("ann")
    ann = lab.client("ann")
    page, resp = lab.label_current(
        ann, "right", 1, reasons=["more_honest", "other", "more_honest"], rationale="  B admits doubt. ",
        rewrite=""
    )
    assert resp.status_code == 303
    [label] = lab.labels()
    expected_choice = "b" if page.side("right").startswith("B-text") else "a"
    assert (label.choice, label.confidence, label.reasons) == (expected_choice, 1, ["more_honest", "other"])
    assert (label.rationale, label.rewrite, label.guideline_version) == ("B admits doubt.", None, None)
    assert 0.0 <= label.seconds < 60


def test_each_pair_goes_to_k_labellers_never_twice_to_one(lab):
    lab.import_pairs(make_pairs(2), labels_per_pair=2)
    for name in ("ann", "bob", "cy"):
        lab.add_user(name)
    clients = {name: lab.client(name) for name in ("ann", "bob", "cy")}
    for name in ("ann", "bob"):
        for _ in range(2):
            assert lab.label_current(clients[name])[1].status_code == 303
        assert "Nothing left to label" in clients[name].get("/label").text
    assert "Nothing left to label" in clients["cy"].get("/label").text
    pairs_users = [(x.pair_id, x.user_id) for x in lab.labels()]
    assert len(pairs_users) == 4 and len(set(pairs_users)) == 4
    with lab.db() as db:
        assert [(p.target,
                 p.assigned) for p in db.scalars(select(Pair).order_by(Pair.id))] == [(2, 2), (2, 2)]


def test_gold_items_go_to_every_labeller_once(lab):
    lab.import_pairs(make_pairs(1) + make_pairs(1, prefix="g", gold="b"))
    for name in ("ann", "bob", "cy"):
        lab.add_user(name)
    for name in ("ann", "bob", "cy"):
        client = lab.client(name)
        while (page := Page(client.get("/label").text)).assignment_id is not None:
            client.post(f"/label/{page.assignment_id}", data={"csrf_token": page.csrf, "choice": "tie",
                                                              "confidence": "2"})
    with lab.db() as db:
        gold_pair = db.scalar(select(Pair).where(Pair.ext_id == "g0"))
        assert (gold_pair.target, gold_pair.assigned) == (None, 3)
    counts = {}
    for x in lab.labels():
        counts[x.pair_id] = counts.get(x.pair_id, 0) + 1
    assert sorted(counts.values()) == [1, 3]


def test_overlap_share_gets_more_labellers(lab):
    result = lab.import_pairs(make_pairs(10) + make_pairs(2, prefix="g", gold="a"), overlap=0.3,
                              overlap_labels=3)
    assert (result.imported, result.gold, result.overlap) == (12, 2, 3)
    with lab.db() as db:
        targets = sorted((p.target or 0) for p in db.scalars(select(Pair)))
    assert targets == [0, 0] + [1] * 7 + [3] * 3


def test_skip_gives_the_slot_to_someone_else(lab):
    lab.import_pairs(make_pairs(1))
    lab.add_user("ann")
    lab.add_user("bob")
    ann, bob = lab.client("ann"), lab.client("bob")
    page = Page(ann.get("/label").text)
    assert "Nothing left to label" in bob.get("/label").text  # the only slot is ann's
    assert ann.post(f"/label/{page.assignment_id}/skip", data={"csrf_token": page.csrf}).status_code == 303
    assert "Nothing left to label" in ann.get("/label").text  # never offered to ann again
    assert Page(bob.get("/label").text).assignment_id is not None
    assert [a.status for a in lab.assignments()] == ["skipped", "pending"]


def test_rounds_are_served_oldest_first_and_closed_rounds_not_at_all(lab):
    lab.import_pairs(make_pairs(1, prefix="old"), round_name="policy-v1")
    lab.import_pairs(make_pairs(1, prefix="new"), round_name="policy-v2")
    lab.add_user("ann")
    lab.add_user("bob")
    lab.add_user("root", "admin")
    ann = lab.client("ann")
    assert "A-text-old0" in ann.get("/label").text
    root = lab.client("root")
    csrf = Page(root.get("/admin").text).csrf
    assert root.post("/admin/rounds/1/active", data={"active": "0", "csrf_token": csrf}).status_code == 303
    bob = lab.client("bob")
    assert "A-text-new0" in bob.get("/label").text
    assert "closed" in root.get("/admin").text


def test_guideline_versions_are_shown_and_stored_with_each_label(lab):
    lab.import_pairs(make_pairs(2))
    lab.add_user("ann")
    lab.add_user("root", "admin")
    root, ann = lab.client("root"), lab.client("ann")
    csrf = Page(root.get("/admin/guidelines").text).csrf
    for text in ("Prefer the honest answer.", "Prefer the honest answer.\nPenalise padding."):
        assert root.post("/admin/guidelines", data={"text": text, "csrf_token": csrf}).status_code == 303
    assert root.post("/admin/guidelines", data={"text": "  ", "csrf_token": csrf}).status_code == 422
    page = Page(ann.get("/label").text)
    assert "version 2" in page.text and "Penalise padding." in page.text
    assert 'name="guideline_version" value="2"' in page.text
    resp = ann.post(
        f"/label/{page.assignment_id}",
        data={"csrf_token": page.csrf, "choice": "left", "confidence": "3", "guideline_version": "2"},
    )
    assert resp.status_code == 303 and lab.labels()[0].guideline_version == 2
    assert "Version 1" in root.get("/admin/guidelines").text  # kept in the history


def test_a_restart_loses_nothing(tmp_path):
    first = Lab(tmp_path)
    first.import_pairs(make_pairs(3))
    first.add_user("ann")
    ann = first.client("ann")
    for _ in range(2):
        first.label_current(ann, "right", 4)
    pending = Page(ann.get("/label").text).assignment_id
    before = [(x.pair_id, x.choice, x.confidence, x.shown_left) for x in first.labels()]
    first.state.sessions.kw["bind"].dispose()

    second = Lab(tmp_path)  # a new process on the same database file
    client = second.client()
    client.cookies.update(ann.cookies)  # the login survives too
    assert Page(client.get("/label").text).assignment_id == pending
    assert [(x.pair_id, x.choice, x.confidence, x.shown_left) for x in second.labels()] == before
    assert len(before) == 2


def test_disabling_a_labeller_frees_their_pending_pair(lab):
    lab.import_pairs(make_pairs(1))
    lab.add_user("ann")
    lab.add_user("bob")
    lab.add_user("root", "admin")
    lab.client("ann").get("/label")
    root = lab.client("root")
    csrf = Page(root.get("/admin/users").text).csrf
    ann_id = lab.assignments()[0].user_id
    root.post(f"/admin/users/{ann_id}/active", data={"active": "0", "csrf_token": csrf})
    assert lab.assignments()[0].status == "skipped"
    assert Page(lab.client("bob").get("/label").text).assignment_id is not None
