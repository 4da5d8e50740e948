"""Run the server: `serve(model_dir, host, port, api_key, ...)`, what the `alignlab serve` command runs."""

from __future__ import annotations

import logging
from pathlib import Path

from alignlab.serving.settings import ServerSettings

log = logging.getLogger("alignlab.serving")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    log_level: str = "info",
    **options,
) -> None:
    """Serve the checkpoint in `model_dir` (full model or LoRA adapter) until interrupted.

    `options` are `ServerSettings` fields (model_name, max_batch_rows, batch_window_ms, max_queue,
    request_timeout_s, default_max_tokens). Binds 127.0.0.1 unless `host` says otherwise.
    """
    import uvicorn

    from alignlab.serving.app import create_app

    settings = ServerSettings(api_key=api_key, **options)
    app = create_app(model_dir, settings, device=device, dtype=dtype)
    name = app.state.serving.model_name
    if host not in LOCAL_HOSTS and api_key is None:
        log.warning(
            "listening on %s without an API key: anyone who can reach this address can use the model", host
        )
    print(f"serving model {name!r} at http://{host}:{port}/v1  (OpenAI chat completions)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
