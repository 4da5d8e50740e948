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


# Online RL: ppo, grpo and rloo take the same options.
Prompts = Annotated[Path, typer.Option(), ConfigKey("prompts.path")]
RewardModels = Annotated[
    list[str] | None,
    typer.Option("--reward-model", help="A reward model directory (alignlab rm); repeat it to pool several "
                 "into one ensemble. Sets a `rewards` item {model: [...]}."),
    ConfigKey("rewards", append=lambda paths: [{"model": paths}]),
]
RuleRewards = Annotated[
    list[str] | None,
    typer.Option("--reward", help="A rule reward, path/to/file.py:function or module:function, called as "
                 "fn(prompts, completions, **fields) and returning one float per completion; repeatable. "
                 "Sets a `rewards` item."),
    ConfigKey("rewards", append=lambda specs: [{"function": s} for s in specs]),
]
KLCoef = Annotated[float | None, typer.Option("--kl-coef"), ConfigKey("kl.coef")]
TargetKL = Annotated[float | None, typer.Option("--target-kl"), ConfigKey("kl.target")]
KLEstimator = Annotated[str | None, typer.Option("--kl-estimator"), ConfigKey("kl.estimator")]
Advantage = Annotated[str | None, typer.Option("--advantage"), ConfigKey("advantage")]


def _online_rl(kind: str) -> None:
    @stage_command(app, kind)
    def command(
        model: Model,
        prompts: Prompts,
        reward_model: RewardModels = None,
        reward: RuleRewards = None,
        kl_coef: KLCoef = None,
        target_kl: TargetKL = None,
        kl_estimator: KLEstimator = None,
        advantage: Advantage = None,
        max_steps: MaxSteps = None,
        lora: Lora = False,
    ) -> None: ...


for _kind in ("ppo", "grpo", "rloo"):
    _online_rl(_kind)


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
