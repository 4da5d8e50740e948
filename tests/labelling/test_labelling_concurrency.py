"""Many labellers at once against a real server on 127.0.0.1: every label stored exactly once.

Each labeller is a thread with its own HTTP client. All start together (a barrier), so they race
for the same pairs; each posts every label twice at the same instant, so double submissions race
too. Loops are bounded: a labeller stops after at most `PAIRS + 2` pages.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from labelling_support import PASSWORD, Page, make_pairs
from sqlalchemy import select

from alignlab.labelling.models import Pair
from alignlab.webserver import serve_in_thread

LABELLERS, PAIRS, K = 6, 10, 3


def _labeller(base: str, name: str, barrier: threading.Barrier) -> list[int]:
    statuses: list[int] = []
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        token = Page(client.get("/login").text).csrf
        assert client.post("/login", data={"name": name, "password": PASSWORD,
                                           "csrf_token": token}).status_code == 303
        barrier.wait()
        for _ in range(PAIRS + 2):
            page = Page(client.get("/label").text)
            if page.assignment_id is None:
                break
            form = {"csrf_token": page.csrf, "choice": "left", "confidence": "3"}
            with ThreadPoolExecutor(2) as pool:
                posts = [pool.submit(client.post, f"/label/{page.assignment_id}",
                                     data=form) for _ in range(2)]
                statuses.extend(sorted(p.result().status_code for p in posts))
    return statuses


def test_concurrent_labellers_store_every_label_once_and_never_over_assign(lab):
    lab.import_pairs(make_pairs(PAIRS), labels_per_pair=K)
    names = [f"user{i}" for i in range(LABELLERS)]
    for name in names:
        lab.add_user(name)
    barrier = threading.Barrier(LABELLERS, timeout=30)
    with serve_in_thread(lab.app, host="127.0.0.1") as base, ThreadPoolExecutor(LABELLERS) as pool:
        results = list(pool.map(lambda n: _labeller(base, n, barrier), names))
    all_statuses = [s for r in results for s in r]
    # Every pair labelled by exactly K labellers; each label posted twice: one 303, one 409.
    assert Counter(all_statuses) == {303: PAIRS * K, 409: PAIRS * K}
    labels = lab.labels()
    assert len(labels) == PAIRS * K
    assert Counter(x.pair_id for x in labels) == {pid: K for pid in {x.pair_id for x in labels}}
    assert len({(x.pair_id, x.user_id) for x in labels}) == PAIRS * K
    assert len({x.assignment_id for x in labels}) == PAIRS * K
    assert all(a.status == "done" for a in lab.assignments()) and len(lab.assignments()) == PAIRS * K
    with lab.db() as db:
        assert {(p.target, p.assigned) for p in db.scalars(select(Pair))} == {(K, K)}
