"""Tiny SFT pieces shared by the training-loop tests, and a worker for the kill-and-resume test.

As a script: `python loop_worker.py MODEL_DIR DATA_JSON OUT_DIR SETTINGS_JSON` trains the model saved
in MODEL_DIR on the token-id examples of DATA_JSON with `train()`; SETTINGS_JSON holds the
`train` / `optim` / `schedule` sections and `sleep_s`, a pause inside every micro-batch that gives
the test time to kill the process mid-run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from alignlab.losses.sft import IGNORE_INDEX, token_nll
from alignlab.training.loop import StepOutput

PAD_ID = 2


def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Right-pad `input_ids`; labels copy the ids except the prompt (first `prompt_len`) and padding."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), PAD_ID)
    labels = torch.full((len(rows), width), IGNORE_INDEX)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, r["prompt_len"] : n] = ids[i, r["prompt_len"] : n]
        mask[i, :n] = 1
    return {
        "input_ids": ids,
        "labels": labels,
        "attention_mask": mask,
        "idx": torch.tensor([r["idx"] for r in rows]),
    }


def count_targets(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def sft_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    nll = token_nll(logits, batch["labels"])
    return StepOutput(
        loss=nll.total, metrics={"nll": float(nll.total.detach()) / max(int(nll.num_tokens), 1)}
    )


def make_examples(n: int, vocab_size: int, seed: int = 0) -> list[dict]:
    """`n` examples of different lengths (6..37 tokens) with a 2..5-token prompt, ids in [3, vocab)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        length = 6 + int(torch.randint(0, 32, (1,), generator=g))
        ids = torch.randint(3, vocab_size, (length,), generator=g).tolist()
        out.append({"idx": i, "input_ids": ids, "prompt_len": 2 + i % 4})
    return out


def slowed(step_fn: Callable, seconds: float) -> Callable:
    def step(model, batch):
        time.sleep(seconds)
        return step_fn(model, batch)

    return step


def main(argv: list[str]) -> None:
    from transformers import AutoModelForCausalLM

    from alignlab.config import OptimConfig, ScheduleConfig, TrainConfig
    from alignlab.training.loop import train

    model_dir, data_json, out_dir, settings_json = argv
    settings = json.loads(Path(settings_json).read_text())
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    examples = json.loads(Path(data_json).read_text())
    result = train(
        model, slowed(sft_step, settings["sleep_s"]), count_targets, examples, collate,
        output_dir=Path(out_dir), train=TrainConfig(**settings["train"]),
        optim=OptimConfig(**settings["optim"]), schedule=ScheduleConfig(**settings["schedule"]),
    )
    Path(out_dir).mkdir(parents=True, exist_ok=True)  # a rank that writes nothing else has no directory yet
    torch.save(result.model.state_dict(), Path(out_dir) / "final.pt")


if __name__ == "__main__":
    main(sys.argv[1:])
