"""`python -m alignlab.serving DIR [--host 127.0.0.1] [--port 8000] [--api-key KEY] ...`"""

from __future__ import annotations

import argparse
import os
import sys

from alignlab.errors import AlignlabError
from alignlab.serving.settings import ServerSettings


def parser() -> argparse.ArgumentParser:
    d = ServerSettings()
    p = argparse.ArgumentParser(prog="python -m alignlab.serving",
                                description="OpenAI-compatible chat-completions server for a model directory.")  # fmt: skip
    p.add_argument("model_dir", help="Model directory (Hugging Face format) or LoRA adapter directory.")
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 for every interface).")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("ALIGNLAB_API_KEY") or None,
                   help="Require 'Authorization: Bearer KEY' (default: $ALIGNLAB_API_KEY; none: no key).")  # fmt: skip
    p.add_argument("--model-name", help="Model id clients send (default: the directory's name).")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps.")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--max-batch-rows", type=int, default=d.max_batch_rows, help="Rows (requests × n) decoded together.")
    p.add_argument("--batch-window-ms", type=float, default=d.batch_window_ms,
                   help="How long to wait for more requests before a batch starts.")  # fmt: skip
    p.add_argument("--max-queue", type=int, default=d.max_queue, help="Waiting requests before answering 429.")
    p.add_argument("--request-timeout", type=float, default=d.request_timeout_s, help="Seconds before answering 504.")
    p.add_argument("--default-max-tokens", type=int, default=d.default_max_tokens,
                   help="Reply length when a request gives no max_tokens.")  # fmt: skip
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from alignlab.serving.server import serve

    try:
        serve(a.model_dir, a.host, a.port, a.api_key, device=a.device, dtype=a.dtype, log_level=a.log_level,
              model_name=a.model_name, max_batch_rows=a.max_batch_rows, batch_window_ms=a.batch_window_ms,
              max_queue=a.max_queue, request_timeout_s=a.request_timeout, default_max_tokens=a.default_max_tokens)  # fmt: skip
    except AlignlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
