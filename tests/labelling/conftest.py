"""A labelling app on a fresh SQLite file per test, with cheap password hashing and a fixed seed."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def lab(tmp_path: Path):
    from labelling_support import Lab

    return Lab(tmp_path)
