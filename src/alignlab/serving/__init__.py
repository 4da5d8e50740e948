"""OpenAI-compatible chat-completions server for any checkpoint (a model directory or a LoRA adapter).

`serve(model_dir, host, port, api_key, ...)` runs it; `create_app(model_dir, settings)` builds the
FastAPI app. See docs/serving.md. FastAPI and uvicorn (the `serve` extra) are imported only when
one of these is used, so importing this package stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerSettings", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "serve":
        from alignlab.serving.server import serve

        return serve
    if name == "create_app":
        from alignlab.serving.app import create_app

        return create_app
    if name == "ServerSettings":
        from alignlab.serving.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'alignlab.serving' has no attribute {name!r}")
