#!/usr/bin/env bash
# Download, on a machine with internet access, the Python packages the GPU bench needs that the
# GPU machine's image lacks (it has torch, transformers, accelerate, peft, tokenizers, pandas,
# pyarrow, typer, rich, but no TRL, datasets or pydantic), as wheels for CPython 3.12 on x86-64
# Linux, into .whl/ at the repository root (ignored by git; never commit wheels).
# run_gpu_bench.sh installs them there without an index. Versions are the ones tested with
# alignlab (see the constraints file). --with-pyarrow adds pyarrow (~45 MB), for an image whose
# pyarrow is older than datasets needs (>= 24).
set -euo pipefail
cd "$(dirname "$0")/../.."
PIP=${PIP:-python3 -m pip}
PACKAGES=(trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pydantic==2.14.3 pydantic_core==2.50.4
          annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0)
if [[ "${1:-}" == "--with-pyarrow" ]]; then PACKAGES+=(pyarrow==24.0.0); fi
mkdir -p .whl
$PIP download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${PACKAGES[@]}"
ls -la .whl
