"""The labelling app in headless Chromium: a labeller labels three pairs (mouse and keyboard), an
admin sees the statistics and downloads an export holding exactly those labels.

Runs the real server (uvicorn, in a thread, on a free 127.0.0.1 port) over a fresh SQLite file.
Needs Debian's Chromium at /usr/bin/chromium (`apt-get install chromium`); without it the test
skips, unless ALIGNLAB_REQUIRE_BROWSER=1 makes that a failure (CI). A screenshot of each page goes
to the test's tmp_path, and to ALIGNLAB_SCREENSHOT_DIR when that is set.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse"
CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}


def _require(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("ALIGNLAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{why} (ALIGNLAB_REQUIRE_BROWSER=1)")
    pytest.skip(f"{why}; set ALIGNLAB_REQUIRE_BROWSER=1 to make this a failure")


@pytest.fixture
def sync_api():
    _require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (install Debian's: apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        _require(False, "the playwright Python package is not installed (dev extra)")
    try:
        import fastapi  # noqa: F401
    except ImportError:
        _require(False, "the labelling app needs the `label` extra")
    return sync_api


@pytest.fixture
def server(tmp_path):
    from alignlab.labelling import importer
    from alignlab.labelling.app import create_app
    from alignlab.labelling.auth import create_user
    from alignlab.labelling.models import Guideline
    from alignlab.labelling.settings import LabellingSettings
    from alignlab.webserver import serve_in_thread

    app = create_app(LabellingSettings(db=f"sqlite:///{tmp_path / 'labels.sqlite'}", seed=7, **CHEAP_HASHING))
    state = app.state.labelling
    pairs = [
        {
            "id": f"p{i}",
            "prompt": [{"role": "system", "content": "You are a concise assistant."},
                       {"role": "user", "content": f"Question {i}: how should I store fresh basil?"}],
            "response_a": f"A-text-p{i}: keep the stems in a glass of water at room temperature.",
            "response_b": f"B-text-p{i}: basil is a herb of the mint family.",
        }
        for i in range(3)
    ]
    with state.sessions() as db:
        create_user(db, state.hasher, "ann", "labeller", PASSWORD)
        create_user(db, state.hasher, "root", "admin", PASSWORD)
        parsed = importer.parse_lines([json.dumps(p) for p in pairs], "pairs.jsonl")
        importer.import_pairs(db, parsed, "pairs.jsonl", "policy-v1")
        db.add(Guideline(version=1, text="Prefer the response that answers the question.\nTie when equal."))
        db.commit()
    with serve_in_thread(app, host="127.0.0.1") as base:
        yield base


class Shots:
    def __init__(self, page, tmp_path: Path):
        self.page, self.dirs = page, [tmp_path / "screenshots"]
        if os.environ.get("ALIGNLAB_SCREENSHOT_DIR"):
            self.dirs.append(Path(os.environ["ALIGNLAB_SCREENSHOT_DIR"]))
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def __call__(self, name: str) -> None:
        first = self.dirs[0] / f"{name}.png"
        self.page.screenshot(path=str(first), full_page=True)
        for d in self.dirs[1:]:
            shutil.copy(first, d / first.name)
        self.taken.append(first)


def _login(page, base: str, name: str) -> None:
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_load_state()


def _shown(page) -> tuple[str, str]:
    """(pair id, side holding response a) of the pair on screen."""
    left = page.inner_text("#response-left")
    pid = left.split("-text-")[1].split(":")[0]
    return pid, "left" if "A-text" in left else "right"


def test_label_three_pairs_then_admin_stats_and_export(sync_api, server, tmp_path):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            shot = Shots(page, tmp_path)
            expected = _labeller_session(page, server, shot)
            records = _admin_session(page, server, shot, tmp_path)
        finally:
            browser.close()
    assert {r["metadata"]["pair_id"]: r["metadata"]["choice"] for r in records} == {k: v[0] for k,
                                                                                    v in expected.items()}
    by_pair = {r["metadata"]["pair_id"]: r for r in records}
    for pid, (choice, level, position) in expected.items():
        r = by_pair[pid]
        assert (r["annotator"], r["metadata"]["confidence_level"],
                r["metadata"]["shown_left"]) == ("ann", level, position)
        assert r["metadata"]["guideline_version"] == 1 and r["metadata"]["round"] == "policy-v1"
        if choice in ("a", "b"):
            assert r["chosen"][0]["content"].startswith(f"{choice.upper()}-text-{pid}")
        else:
            assert r["tie"] is True
    mouse = next(r for r in records if r["metadata"].get("rationale"))
    assert mouse["reason"] == "more_helpful" and mouse["metadata"]["rationale"] == "Answers the question."
    assert all(s.stat().st_size > 10_000 for s in shot.taken) and len(shot.taken) == 8


def _labeller_session(page, base: str, shot: Shots) -> dict[str, tuple[str, int, str]]:
    """Label three pairs; return {pair id: (choice in import terms, confidence level, shown_left)}."""
    expected: dict[str, tuple[str, int, str]] = {}
    page.goto(f"{base}/label")
    assert page.url.startswith(f"{base}/login")  # unauthenticated: sent to the login page
    shot("01-login")
    _login(page, base, "ann")
    assert page.url == f"{base}/label"

    # 1. Mouse only: prefer response a, confidence 3, a reason and a rationale.
    pid, a_side = _shown(page)
    page.click(f"label.opt:has(input[name=choice][value={a_side}])")
    page.click("label.opt:has(input[name=confidence][value='3'])")
    page.check("input[name=reasons][value=more_helpful]")
    page.fill("textarea[name=rationale]", "Answers the question.")
    assert "preferred" in (page.get_attribute(f"#response-{a_side}", "class") or "")
    shot("02-label-mouse-choice")
    page.click("#submit-label")
    page.wait_for_load_state()
    expected[pid] = ("a", 3, "a" if a_side == "left" else "b")
    assert page.inner_text("#done-count") == "1"

    # 2. Keyboard only: T (tie), 4, Enter.
    pid, a_side = _shown(page)
    page.locator("body").click(position={"x": 5, "y": 300})  # focus the page, not a field
    page.keyboard.press("t")
    page.keyboard.press("4")
    assert page.is_checked("input[name=choice][value=tie]") and page.is_checked(
        "input[name=confidence][value='4']"
    )
    shot("03-keyboard-choice")
    page.keyboard.press("Enter")
    page.wait_for_selector("#done-count:has-text('2')")
    expected[pid] = ("tie", 4, "a" if a_side == "left" else "b")

    # 3. Keyboard choice of response b (key A or B by where it is shown), then the mouse submits.
    pid, a_side = _shown(page)
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("b" if a_side == "left" else "a")
    page.keyboard.press("2")
    page.click("#submit-label")
    page.wait_for_selector("text=Nothing left to label")
    expected[pid] = ("b", 2, "a" if a_side == "left" else "b")
    assert page.inner_text("#done-count") == "3"
    shot("04-done")
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{base}/login")
    return expected


def _admin_session(page, base: str, shot: Shots, tmp_path: Path) -> list[dict]:
    _login(page, base, "root")
    assert page.url == f"{base}/admin"
    shot("05-admin-overview")
    page.click("nav >> text=Statistics")
    page.wait_for_url(f"{base}/admin/stats")
    assert page.inner_text("#stat-labels") == "3" and page.inner_text("#stat-ties") == "33%"
    assert "ann" in page.inner_text("#labeller-table")
    shot("06-stats")
    page.click("nav >> text=Export")
    page.wait_for_url(f"{base}/admin/export")
    shot("07-export")
    with page.expect_download() as info:
        page.click("#download-export")
    out = tmp_path / "export.jsonl"
    info.value.save_as(str(out))
    assert info.value.suggested_filename == "labels-none.jsonl"
    page.click("nav >> text=Guidelines")
    page.wait_for_url(f"{base}/admin/guidelines")
    shot("08-guidelines")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3
    from alignlab.data.schema import PreferencePair

    assert all(PreferencePair.model_validate(r).annotator == "ann" for r in records)
    return records
