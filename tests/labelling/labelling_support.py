"""Test support for the labelling app: a `Lab` on a fresh SQLite file, page parsing, sample pairs."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Every labelling test module imports this one first: without the `label` extra they all skip.
pytest.importorskip("fastapi",
                    reason="the labelling app needs the `label` extra (pip install alignlab[label])")

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from alignlab.labelling import importer
from alignlab.labelling.app import create_app
from alignlab.labelling.auth import create_user
from alignlab.labelling.models import Assignment, Label
from alignlab.labelling.settings import LabellingSettings

# Argon2 at its cheapest, for tests only: production keeps the RFC 9106 defaults of the settings.
CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}
PASSWORD = "correct horse"


def make_pairs(n: int, prefix: str = "p", **extra: Any) -> list[dict[str, Any]]:
    """`n` pairs with distinctive texts: response_a of pair i is 'A-text-<prefix><i>'."""
    return [
        {
            "id": f"{prefix}{i}",
            "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user",
                                                                    "content": f"Question {prefix}{i}?"}],
            "response_a": f"A-text-{prefix}{i}",
            "response_b": f"B-text-{prefix}{i}",
            **extra,
        }
        for i in range(n)
    ]


class Page:
    """What the tests read from a rendered labelling page."""

    def __init__(self, text: str):
        self.text = text

    @property
    def csrf(self) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', self.text).group(1)

    @property
    def assignment_id(self) -> int | None:
        m = re.search(r'id="label-form" data-assignment="(\d+)"', self.text)
        return int(m.group(1)) if m else None

    def side(self, which: str) -> str:
        """The text of the response shown on `which` side ("left" / "right")."""
        block = re.search(rf'data-side="{which}">(.*?)</article>', self.text, re.S).group(1)
        return html.unescape(re.search(r'<div class="content">(.*?)</div>', block, re.S).group(1))

    def side_of(self, text: str) -> str:
        return "left" if text in self.side("left") else "right"


class Lab:
    """One app on one database file, with helpers to add users, import pairs and log in."""

    def __init__(self, tmp_path: Path, **settings: Any):
        self.path = tmp_path / "labels.sqlite"
        self.settings = LabellingSettings(db=f"sqlite:///{self.path}", seed=1234, **{**CHEAP_HASHING,
                                                                                     **settings})
        self.app = create_app(self.settings)
        self.state = self.app.state.labelling

    @contextmanager
    def db(self) -> Iterator[Session]:
        with self.state.sessions() as session:
            yield session

    def add_user(self, name: str, role: str = "labeller") -> None:
        with self.db() as db:
            create_user(db, self.state.hasher, name, role, PASSWORD)
            db.commit()

    def import_pairs(self, records: list[dict], round_name: str = "r1", **kw: Any) -> importer.ImportResult:
        lines = [json.dumps(r) for r in records]
        with self.db() as db:
            result = importer.import_pairs(db, importer.parse_lines(lines, "pairs.jsonl"), "pairs.jsonl",
                                           round_name, **kw)
            db.commit()
        return result

    def client(self, name: str | None = None) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        if name is not None:
            self.login(client, name)
        return client

    @staticmethod
    def login(client: TestClient, name: str, password: str = PASSWORD) -> Any:
        token = Page(client.get("/login").text).csrf
        resp = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
        return resp

    @staticmethod
    def page(client: TestClient, url: str = "/label") -> Page:
        return Page(client.get(url).text)

    @staticmethod
    def label_current(client: TestClient, choice: str = "left", confidence: int = 3,
                      **fields: Any) -> tuple[Page, Any]:
        """Open /label and submit `choice` for the pair shown; return the page and the response."""
        page = Page(client.get("/label").text)
        data = {"csrf_token": page.csrf, "choice": choice, "confidence": str(confidence), **fields}
        return page, client.post(f"/label/{page.assignment_id}", data=data)

    def labels(self) -> list[Label]:
        with self.db() as db:
            return list(db.scalars(select(Label).order_by(Label.id)).all())

    def assignments(self) -> list[Assignment]:
        with self.db() as db:
            return list(db.scalars(select(Assignment).order_by(Assignment.id)).all())
