"""One command per stage kind: the options it takes and the config keys they set, nothing else.

Adding a stage command: a function below listing its own options (shared ones from `options`, its
own as `Annotated[type, typer.Option(), ConfigKey("key")]`), decorated with `@stage_command`; every
stage command also takes --output, --config and `key.sub=value` overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignlab.cli.app import app
from alignlab.cli.options import (
    ConfigKey,
    Data,
    Epochs,
    Format,
    Lora,
    MaxSteps,
    Model,
    SkipInvalid,
    stage_command,
)


@stage_command(app, "pretrain")
def pretrain(
    data: Data,
    model: Annotated[str | None, typer.Option(), ConfigKey("model.path", describe="model")] = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch"), ConfigKey("init", on={})] = False,
    seq_len: Annotated[int | None, typer.Option(), ConfigKey("data.seq_len")] = None,
    packing: Annotated[str | None, typer.Option(), ConfigKey("data.packing")] = None,
    max_steps: MaxSteps = None,
    epochs: Epochs = None,
) -> None: ...


@stage_command(app, "sft")
def sft(model: Model, data: Data, format: Format = None, max_steps: MaxSteps = None, epochs: Epochs = None,
        lora: Lora = False, skip_invalid: SkipInvalid = False) -> None: ...


@stage_command(app, "rm")
def rm(
    model: Model,
    data: Data,
    format: Format = None,
    ensemble: Annotated[int | None, typer.Option(), ConfigKey("ensemble.size")] = None,
    max_steps: MaxSteps = None,
    epochs: Epochs = None,
    lora: Lora = False,
    skip_invalid: SkipInvalid = False,
) -> None: ...


@stage_command(app, "score")
def score(
    reward_model: Annotated[str, typer.Option(), ConfigKey("reward_model.path", describe="reward_model")],
    data: Data,
    format: Format = None,
    skip_invalid: SkipInvalid = False,
) -> None: ...


@stage_command(app, "dpo")
def dpo(
    model: Model,
    data: Data,
    loss: Annotated[str | None, typer.Option(), ConfigKey("loss")] = None,
    ref_model: Annotated[str | None, typer.Option(), ConfigKey("reference.path")] = None,
    format: Format = None,
    max_steps: MaxSteps = None,
    epochs: Epochs = None,
    lora: Lora = False,
    skip_invalid: SkipInvalid = False,
) -> None: ...


Constitution = Annotated[str | None, typer.Option(), ConfigKey("constitution")]


@stage_command(app, "cai")
def cai(
    model: Model,
    prompts: Annotated[Path, typer.Option(), ConfigKey("prompts")],
    constitution: Constitution = None,
    rounds: Annotated[int | None, typer.Option(), ConfigKey("rounds")] = None,
    critic: Annotated[str | None, typer.Option(), ConfigKey("critic.path", describe="critic")] = None,
    limit: Annotated[int | None, typer.Option(), ConfigKey("limit")] = None,
) -> None: ...


@stage_command(app, "rlaif")
def rlaif(
    pairs: Annotated[Path, typer.Option(), ConfigKey("pairs")],
    judge: Annotated[str, typer.Option(), ConfigKey("judge.path", describe="judge")],
    constitution: Constitution = None,
    cot: Annotated[bool, typer.Option("--cot"), ConfigKey("cot", on=True)] = False,
    reference: Annotated[Path | None, typer.Option(), ConfigKey("reference")] = None,
    format: Annotated[str | None, typer.Option(), ConfigKey("format")] = None,
    limit: Annotated[int | None, typer.Option(), ConfigKey("limit")] = None,
) -> None: ...
