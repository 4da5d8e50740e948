"""Helpers of the serving tests."""

from __future__ import annotations

import pytest

MODEL = "tiny"  # the model id the test servers answer to
HELLO = [{"role": "user", "content": "Hello!"}]


def client(url: str, api_key: str = "unused", **kwargs):
    """The official `openai` client for a test server (no retries: a test sees every answer)."""
    openai = pytest.importorskip("openai", reason="the official openai client is a dev dependency")
    return openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0, timeout=120, **kwargs)
