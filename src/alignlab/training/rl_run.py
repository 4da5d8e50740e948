"""What every online RL stage (ppo, grpo, rloo) runs: load, build the dataflow and the rollout
source, train in the one loop, save.

The method modules (`training.ppo`, `grpo`, `rloo`) call `run_online_rl` with their config (and
PPO with its critic builder); everything else is shared here and in non-method modules: the
dataflow (`rl_dataflow`), the rollout source (`rollouts`), the update step (`rl_step`), the
rewards (`alignlab.rewards`). Outputs: the policy (or its LoRA adapter) in the stage directory,
the critic in `value_model/` (PPO), `metrics.jsonl`, `samples.jsonl`, policy snapshots in
`snapshots/step-N/` when asked. A LoRA policy's reference is its base with adapters disabled;
otherwise the reference (the initial policy, or `kl.reference`) is a frozen copy in memory.
Not supported: FSDP / ZeRO-3 (generation needs whole weights), a LoRA critic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignlab.config.rl import OnlineRLConfig, resolved
from alignlab.data.prompts import read_prompts
from alignlab.data.templating import encode_prompt
from alignlab.errors import DataError
from alignlab.generation.base import SamplingParams
from alignlab.generation.decode import max_positions
from alignlab.generation.hf import unwrap_model
from alignlab.losses.advantages import get_advantage
from alignlab.losses.kl import build_kl_controller
from alignlab.modeling.saving import save_model_artefacts
from alignlab.rewards.build import build_reward_set
from alignlab.stage_io import StageContext
from alignlab.training.loop import train
from alignlab.training.rl_dataflow import AdvantageSettings, Dataflow, Prompts, SamplesLog
from alignlab.training.rl_step import PolicyCritic, UpdateSettings, make_rl_step, rl_item_count
from alignlab.training.rollouts import RolloutSource

SNAPSHOTS = "snapshots"


def load_prompts(path: str, tokenizer, *, max_length: int, log: Callable[[str], None], **read) -> Prompts:
    """The prompts of `path`, templated and tokenized; those over `max_length` tokens are left out."""
    records = read_prompts(path, **read)
    kept, ids = [], []
    for record in records:
        tokens = encode_prompt(tokenizer, record.messages, record.fields.get("tools"))
        if len(tokens) <= max_length:
            kept.append(record)
            ids.append(tokens)
    if not kept:
        raise DataError(f"{path}: every prompt is longer than {max_length} tokens (prompts.max_length, or "
                        "the model's context less one); raise prompts.max_length or shorten them")
    if len(kept) < len(records):
        log(f"{path}: {len(records) - len(kept)} of {len(records)} prompts are longer than {max_length} "
            "tokens (prompts.max_length, or the model's context less one) and left out")
    return Prompts(kept, ids)


def spread(prompts: Prompts, limit: int | None) -> Prompts:
    """At most `limit` of `prompts`, evenly spaced through them (floor(i·n/limit)), so a file sorted by
    category keeps every category in proportion; all of them without a limit."""
    n = len(prompts.records)
    if limit is None or limit >= n:
        return prompts
    keep = [i * n // limit for i in range(limit)]
    return Prompts([prompts.records[i] for i in keep], [prompts.ids[i] for i in keep])


@dataclass(frozen=True)
class Critic:
    """PPO's critic as the run needs it: how to build it, its lr multiplier and value-loss settings."""

    build: Callable[[], torch.nn.Module]
    lr_multiplier: float = 1.0
    clip: float | None = 0.2
    loss_coef: float = 0.5


def run_online_rl(config: OnlineRLConfig, ctx: StageContext, critic: Critic | None = None) -> dict[str, Any]:
    """Train `config.model` online on `config.prompts` with `config.rewards`; see the module docstring."""
    from alignlab.modeling.loading import count_parameters, load_model, load_model_tokenizer

    r = resolved(config)
    tokenizer = load_model_tokenizer(config.model)
    rewards = build_reward_set(config.rewards, config.reward, config.model)
    policy = load_model(config.model, config.lora, seed=config.train.seed)
    # A prompt must leave room for at least one generated token in the model's context.
    context = max_positions(policy)
    max_length = min(config.prompts.max_length, context - 1) if context else config.prompts.max_length
    pc = config.prompts
    prompts = load_prompts(pc.path, tokenizer, max_length=max_length, log=ctx.log, split=pc.split,
                           limit=pc.limit, skip_invalid=pc.skip_invalid, system_prompt=pc.system_prompt)
    reference = None
    if not config.lora.enabled or config.kl.reference is not None:
        ref_config = config.model.model_copy(update={"path": config.kl.reference or config.model.path})
        reference = load_model(ref_config).eval().requires_grad_(False)
    modules = PolicyCritic(policy, critic.build() if critic else None,
                           critic.lr_multiplier if critic else 1.0)
    kl = build_kl_controller(config.kl.coef, config.kl.target, config.kl.horizon)
    dataflow = build_dataflow(config, r, tokenizer, prompts, rewards, kl, reference, ctx)
    source = RolloutSource(
        len(prompts.records), dataflow.make_batch, prompts_per_step=config.rollout.prompts_per_step,
        epochs=config.update.epochs, minibatches=config.update.minibatches, seed=config.train.seed,
        stop_kl=config.update.stop_kl, stateful={"kl": kl, "rewards": rewards},
        on_step=_snapshots(ctx.output_dir / SNAPSHOTS, config.logging.snapshot_every, tokenizer),
    )
    eval_fn = None
    if config.logging.eval_prompts is not None:
        held_out = spread(load_prompts(config.logging.eval_prompts, tokenizer, max_length=max_length,
                                       log=ctx.log), config.logging.eval_limit)
        eval_log = SamplesLog(ctx.path("eval_samples"), enabled=_is_main())

        def eval_fn(model: torch.nn.Module) -> dict[str, float]:
            means, rows = dataflow.evaluate(model, held_out, seed=config.train.seed)
            eval_log.write(source.steps, rows)  # the loop evaluates after `source.steps` steps
            return means

    trainable, total = count_parameters(modules)
    ctx.log(f"{config.advantage}: {len(prompts.records)} prompts, {r['samples_per_prompt']} replies per "
            f"prompt, {len(config.rewards)} reward(s), KL {r['kl_estimator']} in the {r['kl_placement']}; "
            f"reference {'the base with adapters off' if reference is None else 'a frozen copy'}; "
            f"{trainable:,} of {total:,} parameters trainable")
    result = train(modules, make_rl_step(update_settings(config, r, critic)), rl_item_count(r["loss_agg"]),
                   source, output_dir=ctx.output_dir, train=config.train, optim=config.optim,
                   schedule=config.schedule, eval_fn=eval_fn)
    save_policy_and_critic(result, tokenizer, ctx)
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, int | float)}
    summary.update(steps=float(result.global_step), prompts=float(len(prompts.records)))
    return summary


def build_dataflow(config: OnlineRLConfig, r: dict[str, Any], tokenizer, prompts: Prompts, rewards,
                   kl, reference: torch.nn.Module | None, ctx: StageContext) -> Dataflow:
    """The run's dataflow from the config's rollout, advantage, KL and logging settings."""
    rollout = config.rollout
    sampling = SamplingParams(rollout.max_new_tokens, rollout.temperature, rollout.top_p, rollout.top_k,
                              n=r["samples_per_prompt"], stop=tuple(rollout.stop))
    advantage = AdvantageSettings(get_advantage(config.advantage), dict(config.advantage_params), r["whiten"],
                                  r["kl_estimator"], r["kl_placement"] == "reward")
    samples = SamplesLog(ctx.path("samples"), every=config.logging.samples_every,
                         rows=config.logging.samples_per_batch, enabled=_is_main())
    return Dataflow(tokenizer=tokenizer, prompts=prompts, sampling=sampling, rewards=rewards,
                    kl_controller=kl, advantage=advantage, reference=reference,
                    forward_rows=rollout.max_batch_rows, max_batch_rows=rollout.max_batch_rows,
                    samples=samples)


def update_settings(config: OnlineRLConfig, r: dict[str, Any], critic: Critic | None) -> UpdateSettings:
    """The step's settings: the update section, the resolved defaults, the critic's loss."""
    u = config.update
    return UpdateSettings(
        r["loss_agg"], float(config.rollout.max_new_tokens), config.rollout.temperature, u.clip_eps,
        u.clip_eps_high, u.dual_clip, u.entropy_coef, kl_in_loss=r["kl_placement"] == "loss",
        kl_estimator=r["kl_estimator"], value_clip=critic.clip if critic else None,
        value_coef=critic.loss_coef if critic else 0.0,
    )


def save_policy_and_critic(result, tokenizer, ctx: StageContext) -> None:
    """The policy (or adapter) into the stage directory, the critic (if any) into `value_model`."""
    from alignlab.distributed import wait_for_everyone

    if result.is_main_process:
        modules: PolicyCritic = result.model
        parts = [("policy.", modules.policy, ctx.output_dir)]
        if modules.critic is not None:
            parts.append(("critic.", modules.critic, ctx.path("value_model")))
        for prefix, module, out in parts:
            Path(out).mkdir(parents=True, exist_ok=True)
            state = None if result.state_dict is None else {
                k[len(prefix):]: v for k, v in result.state_dict.items() if k.startswith(prefix)}
            save_model_artefacts(module, tokenizer, out, state_dict=state)
    wait_for_everyone()


def _snapshots(root: Path, every: int | None, tokenizer) -> Callable[[torch.nn.Module, int], None] | None:
    """The rollout source's step hook that saves the policy after every `every`-th step."""
    if every is None:
        return None

    def save(model: torch.nn.Module, steps_done: int) -> None:
        if steps_done > 0 and steps_done % every == 0 and _is_main():
            out = root / f"step-{steps_done:07d}"
            out.mkdir(parents=True, exist_ok=True)
            save_model_artefacts(unwrap_model(model).policy, tokenizer, out)

    return save


def _is_main() -> bool:
    from alignlab.distributed import is_main_process

    return is_main_process()

