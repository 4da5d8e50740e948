"""`alignlab serve DIR ...`: as a process it serves; bad input is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from serving_support import HELLO, client

from alignlab.webserver import free_port


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/model"], "model directory '/no/such/model' not found"),
        (["--max-batch-rows", "0", "."], "server option 'max_batch_rows' cannot be 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, monkeypatch) -> None:
    from alignlab.cli import main

    monkeypatch.delenv("ALIGNLAB_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


@pytest.mark.slow
def test_the_module_serves_a_model_directory(model_dir) -> None:
    port = free_port()
    env = {**os.environ, "ALIGNLAB_API_KEY": "from-env", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "alignlab.cli", "serve", str(model_dir), "--port", str(port),
         "--model-name", "tiny", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        r = client(url, api_key="from-env").chat.completions.create(
            model="tiny", messages=HELLO, max_tokens=4
        )
        assert r.usage.completion_tokens == 4 or r.choices[0].finish_reason == "stop"
        # The key came from ALIGNLAB_API_KEY.
        assert httpx.get(f"{url}/v1/models", timeout=5).status_code == 401
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"serving model 'tiny' at http://127.0.0.1:{port}/v1" in out
