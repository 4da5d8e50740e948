#!/usr/bin/env bash
# GPU benchmarks, alignlab next to TRL: Qwen2-0.5B / 1.5B shapes from random init (no hub needed).
#
#   bench/gpu/run_gpu_bench.sh [--shapes qwen2-0.5b,qwen2-1.5b] [--methods sft,dpo,grpo] [--steps 30]
#                              [--out-dir DIR] [--peak-tflops 989]
#   bench/gpu/run_gpu_bench.sh --smoke      # anywhere, CPU included: tiny shape, 2 steps, fp32
#
# On a machine without TRL, datasets or pydantic, first run bench/gpu/fetch_wheels.sh where there is
# internet access and bring .whl/ along: they are installed here into /tmp/site, without an index.
# alignlab itself runs from this checkout's src/. Results: bench/results/gpu_<shape>.json (or --out-dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
if ! $PY -c "import trl, datasets, pydantic" 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "TRL, datasets or pydantic is missing and .whl/ holds no wheels: run bench/gpu/fetch_wheels.sh where" \
             "pip can reach PyPI, and bring .whl/ along" >&2
        exit 2
    fi
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    $PY -c "import trl, datasets, pydantic" || {
        echo "the carried wheels do not import here (see above); an older pyarrow needs fetch_wheels.sh --with-pyarrow" >&2
        exit 2
    }
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
exec $PY bench/gpu/bench_gpu.py "$@"
