"""The OpenAI-compatible server on CPU: generated tokens/s with 1, 8 and 32 concurrent clients, against
the same model answering one request at a time in process (serial).

Model: the laboratory-shaped random Llama of `common.make_model` (hidden 128, 4 layers, vocabulary
2048, ChatML template). Every request is a synthetic user turn of 10–30 words, temperature 1,
`max_tokens` N (default 64); a random model rarely samples its end-of-turn token, so nearly every
reply runs to N. Variants:

- `serial`: `HFGenerator.generate([prompt], params)` one request after another, in a child
  process: the model alone, no HTTP, no batching;
- `clients_C`: `alignlab serve` in a child process (batches of up to 64 rows, a
  collection window of `--batch-window-ms`, 5 ms by default) and C client threads here, each
  sending its next request as soon as the last is answered (httpx, keep-alive).

Throughput = completion tokens the server reported / wall seconds from the first request to the
last answer (server start-up and one warm-up request left out). Each variant gets a fresh process
with OMP_NUM_THREADS=1; variants alternate over the repeats and medians are reported, with each
server variant's ratio to the serial run of the same repeat. On a shared machine the absolute
numbers are noisy; the ratios less so.

    python bench/bench_serve.py [--new-tokens 64] [--repeats 3] [--rounds 4] [--min-requests 32]

Writes JSON (default bench/results/serve_cpu_lab.json). Needs the `serve` extra (FastAPI, uvicorn).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_model, run_child, sentence, versions  # noqa: E402

HERE = Path(__file__).resolve().parent
CLIENTS = (1, 8, 32)
MODEL_NAME = "lab"


def make_prompts(count: int, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    return [[{"role": "user", "content": sentence(rng, rng.randint(10, 30))}] for _ in range(count)]


def run_serial(spec: dict) -> dict:
    """Child process: the model in process, one request at a time."""
    import torch

    from alignlab.generation.base import SamplingParams
    from alignlab.generation.hf import HFGenerator
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer

    torch.set_num_threads(1)
    gen = HFGenerator(
        load_causal_lm(spec["model"], dtype="float32", device="cpu").eval(), load_tokenizer(spec["model"])
    )
    params = [
        SamplingParams(max_new_tokens=spec["new_tokens"], temperature=1.0, seed=i)
        for i in range(len(spec["prompts"]))
    ]
    gen.generate(spec["prompts"][:1], SamplingParams(max_new_tokens=4))  # warm-up
    t0 = time.perf_counter()
    tokens = sum(
        len(gen.generate([p], q)[0][0].token_ids) for p, q in zip(spec["prompts"], params, strict=True)
    )
    return _result(tokens, len(spec["prompts"]), time.perf_counter() - t0)


def run_server(model: str, prompts: list, clients: int, new_tokens: int, window_ms: float) -> dict:
    """A server process and `clients` client threads here."""
    import httpx

    from alignlab.webserver import free_port

    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("ALIGNLAB_API_KEY", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "alignlab.cli", "serve", model, "--port", str(port),
         "--model-name", MODEL_NAME, "--device", "cpu", "--dtype", "float32", "--log-level", "warning",
         "--batch-window-ms", str(window_ms)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(server, url)
        body = {"model": MODEL_NAME, "max_tokens": new_tokens, "temperature": 1.0}
        httpx.post(
            f"{url}/v1/chat/completions", json={**body, "messages": prompts[0], "max_tokens": 4}, timeout=600
        )
        before = httpx.get(f"{url}/health", timeout=30).json()
        tokens, seconds = _drive(url, body, prompts, clients)
        after = httpx.get(f"{url}/health", timeout=30).json()
    finally:
        server.terminate()
        server.wait(timeout=60)
    batches = after["batches"] - before["batches"]
    result = _result(tokens, len(prompts), seconds)
    result["batches"] = batches
    result["mean_requests_per_batch"] = round((after["requests"] - before["requests"]) / batches, 2)
    return result


def _wait_healthy(server: subprocess.Popen, url: str) -> None:
    import httpx

    deadline = time.monotonic() + 300
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.stderr.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not come up within 300 s")
        time.sleep(0.2)


def _drive(url: str, body: dict, prompts: list, clients: int) -> tuple[int, float]:
    """Send every prompt once from `clients` threads, each waiting for its answer before the next."""
    import httpx

    next_index, lock, tokens, errors = iter(range(len(prompts))), threading.Lock(), [0], []

    def client() -> None:
        with httpx.Client(timeout=600) as http:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                r = http.post(f"{url}/v1/chat/completions", json={**body, "messages": prompts[i], "seed": i})
                if r.status_code != 200:
                    errors.append(r.text[:300])
                    return
                with lock:
                    tokens[0] += r.json()["usage"]["completion_tokens"]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return tokens[0], seconds


def _result(tokens: int, requests: int, seconds: float) -> dict:
    return {
        "requests": requests,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1),
        "requests_per_s": round(requests / seconds, 2),
    }


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument(
        "--repeats", type=int, default=3, help="Runs of each variant, alternated; medians reported."
    )
    p.add_argument(
        "--rounds", type=int, default=4, help="Requests per client (C clients send rounds × C requests)."
    )
    p.add_argument("--min-requests", type=int, default=32, help="At least this many requests per variant.")
    p.add_argument("--batch-window-ms", type=float, default=5.0, help="The server's collection window.")
    p.add_argument("--out", type=Path, default=HERE / "results" / "serve_cpu_lab.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(run_serial(json.loads(a.spec))))
        return
    counts = {
        "serial": a.min_requests,
        **{f"clients_{c}": max(a.min_requests, a.rounds * c) for c in CLIENTS},
    }
    runs: dict[str, list[dict]] = {name: [] for name in counts}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        model = make_model(Path(tmp))
        prompts = make_prompts(max(counts.values()))
        for _ in range(a.repeats):  # alternate, so drift on a shared machine hits every variant alike
            for name, count in counts.items():
                if name == "serial":
                    spec = {"model": model, "prompts": prompts[:count], "new_tokens": a.new_tokens}
                    r = run_child(__file__, "serial", spec)
                else:
                    r = run_server(
                        model, prompts[:count], int(name.split("_")[1]), a.new_tokens, a.batch_window_ms
                    )
                runs[name].append(r)
                print(
                    f"{name}: {r['tokens_per_s']} tokens/s ({r['requests']} requests, {r['seconds']} s)",
                    flush=True,
                )
    ratios = {name: [x["tokens_per_s"] / s["tokens_per_s"] for x, s in zip(rs, runs["serial"], strict=True)]
              for name, rs in runs.items() if name != "serial"}  # fmt: skip
    report = {
        "benchmark": "serve_cpu_lab",
        "setup": {
            "model": "llama hidden 128, 4 layers, 4 heads, vocab "
                     "2048 (random init), bench/common.py make_model",
            "new_tokens": a.new_tokens,
            "temperature": 1.0,
            "requests": counts,
            "repeats": a.repeats,
            "server": f"alignlab serve, max_batch_rows 64, batch_window_ms {a.batch_window_ms:g}",
            "device": "cpu",
            "cpu_count": os.cpu_count(),
            "omp_num_threads": 1,
            "load_average": os.getloadavg(),
            **versions(with_trl=False),
        },
        "runs": runs,
        "median_tokens_per_s": {name: _median([r["tokens_per_s"] for r in rs]) for name, rs in runs.items()},
        "ratio_vs_serial": {
            name: {
                "median_of_repeats": round(_median(v), 2),
                "min": round(min(v), 2),
                "max": round(max(v), 2),
            }
            for name, v in ratios.items()
        },
        "note": "shared machine under load: absolute tokens/s are "
                "noisy; ratios are per repeat (same conditions)",
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("median_tokens_per_s", "ratio_vs_serial")}, indent=2))


if __name__ == "__main__":
    main()
