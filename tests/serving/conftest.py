"""Servers of the tiny Llama for the serving tests, started with uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from serving_support import MODEL

from alignlab.generation.hf import HFGenerator
from alignlab.serving.app import app_for_generator, create_app
from alignlab.serving.settings import ServerSettings
from alignlab.webserver import serve_in_thread


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir) -> Path:
    return tiny_model_dir("llama")


@pytest.fixture(scope="module")
def reference(model_dir) -> HFGenerator:
    """The same checkpoint in process: what the server must answer."""
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer

    return HFGenerator(load_causal_lm(str(model_dir), device="cpu").eval(), load_tokenizer(str(model_dir)))


@pytest.fixture(scope="module")
def server(model_dir) -> Iterator[str]:
    """Base URL of a server of the tiny Llama (no API key), shared by a test module."""
    with serve_in_thread(create_app(model_dir, ServerSettings(model_name=MODEL))) as url:
        yield url


@pytest.fixture
def start(model_dir) -> Callable[..., AbstractContextManager[str]]:
    """start(settings, generator=None): a server of its own for one test (a context manager of its URL)."""

    def make(settings: ServerSettings, generator: HFGenerator | None = None) -> AbstractContextManager[str]:
        from alignlab.modeling.loading import load_tokenizer

        if generator is None:
            return serve_in_thread(create_app(model_dir, settings))
        app = app_for_generator(
            generator, load_tokenizer(str(model_dir)), settings.model_name or MODEL, settings
        )
        return serve_in_thread(app)

    return make
