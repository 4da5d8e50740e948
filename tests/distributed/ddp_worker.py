"""Worker for the distributed test: the tiny SFT run of the loop tests, launched by torchrun."""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import loop_worker  # noqa: E402


def main(model_dir: str, data_json: str, out_dir: str, settings_json: str) -> None:
    loop_worker.main([model_dir, data_json, out_dir, settings_json])


if __name__ == "__main__":
    # Every rank trains and saves its final weights; rank 0 writes to the directory the test reads.
    if os.environ.get("RANK", "0") != "0":
        sys.argv[3] = sys.argv[3] + f"-rank{os.environ['RANK']}"
    torch.set_num_threads(1)
    main(*sys.argv[1:])
