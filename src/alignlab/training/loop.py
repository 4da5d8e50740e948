"""The one training loop. Every method (SFT, reward models, DPO, PPO) supplies only a step function.

`train()` owns the optimizer, the learning-rate schedule, gradient accumulation, mixed precision,
`accelerate` (DDP / FSDP / DeepSpeed come from the user's `accelerate launch` config), checkpoints
with exact resume, the NaN guard, the progress bar and metric logging. It reads top to bottom in
execution order.

Contract with a method: `step_fn(model, batch)` returns the SUM of its per-item losses over the
micro-batch, and `count_items(batch)` says how many items that sum runs over (target tokens for
SFT, pairs for DPO). The loop divides by the items of the whole optimizer step, on all processes
together, so batch 8 x accumulation 1 and batch 1 x accumulation 8 give the same update. The
batches come from a `BatchSource` (`alignlab.training.sources`: epochs over a dataset, the re-cut
pretraining stream, RL rollouts); a plain sequence is read in epochs. A method that supports
`train.group_by_length` also passes `example_length(example) -> int`, the padded width an example
brings to a batch (its tokens, or the longer side of a pair).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from alignlab.config import OptimConfig, ScheduleConfig, TrainConfig
from alignlab.errors import ConfigError, TrainingError
from alignlab.io import append_jsonl
from alignlab.progress import Progress
from alignlab.training import checkpoint as ckpt
from alignlab.training.compiled import CompiledBlocks, compile_options
from alignlab.training.schedule import build_scheduler
from alignlab.training.sources import BatchSource, EpochSource, RunInfo

if TYPE_CHECKING:
    from accelerate import Accelerator


@dataclass
class StepOutput:
    loss: torch.Tensor  # SUM of the per-item losses in this micro-batch (not the mean)
    metrics: dict[str, float] = field(default_factory=dict)  # averaged over a step, weighted by items


StepFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], StepOutput]
ItemCountFn = Callable[[dict[str, torch.Tensor]], int]
LengthFn = Callable[[Any], int]


@dataclass
class TrainResult:
    model: torch.nn.Module  # unwrapped (accelerator.unwrap_model); under FSDP / ZeRO-3 still sharded
    global_step: int
    metrics_path: Path
    last_metrics: dict[str, float]
    # The full weights for save_pretrained(state_dict=...), gathered from every process (FSDP and
    # ZeRO-3 shard them); None on the processes other than the main one under sharding.
    state_dict: dict[str, torch.Tensor] | None = None
    is_main_process: bool = True  # the one process that writes the stage's files


PRECISION_TO_ACCELERATE = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
_TRACKER_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)
}


# ------------------------------------------------------------------------------------ builders


def build_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; biases and norm gains (the 1-D tensors) get no decay.

    Decaying a norm gain or a bias pulls it toward 0, which changes what the layer computes rather
    than regularising it (the nanoGPT / GPT-3 convention). A model with `lr_multipliers` (parameter
    name prefix -> factor, e.g. {"critic.": 2.0} for an RL critic) gets those parameters' own lr.
    """
    scales = getattr(model, "lr_multipliers", None) or {}
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = next((float(f) for prefix, f in scales.items() if name.startswith(prefix)), 1.0)
            groups.setdefault((p.ndim >= 2, scale), []).append(p)
    if not groups:
        raise ConfigError("the model has no trainable parameter; check lora.enabled and lora.target_modules")
    order = sorted(groups, key=lambda k: (not k[0], k[1] != 1.0, k[1]))  # decay first; the logged lr first
    return torch.optim.AdamW(
        [{"params": groups[k], "weight_decay": optim.weight_decay if k[0] else 0.0, "lr": optim.lr * k[1]}
         for k in order],
        lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
    )


def build_accelerator(
    precision: str, trackers: Sequence[str], output_dir: Path, grad_accum: int = 1
) -> Accelerator:
    """An `Accelerator` for `train.precision` and `train.trackers`; the launch config decides DDP etc."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import ProjectConfiguration

    for name in trackers:
        if not any(importlib.util.find_spec(m) for m in _TRACKER_PACKAGES[name]):
            raise ConfigError(
                f"train.trackers: '{name}' is not installed; pip install {name}, or remove it from "
                "train.trackers"
            )
    mixed = PRECISION_TO_ACCELERATE[precision]
    # accelerate keeps one process-wide state and refuses a second precision in the same process
    # (a pipeline may run an fp32 stage after a bf16 one): reset it, keeping the distributed setup.
    if AcceleratorState._shared_state.get("_mixed_precision", mixed) != mixed:
        AcceleratorState._reset_state(reset_partial_state=False)
    # Under DeepSpeed the engine accumulates itself and must know the step length; elsewhere the
    # loop accumulates and accelerate's own 1/accumulation scaling must stay off.
    use_ds = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    try:
        return Accelerator(
            mixed_precision=mixed,
            gradient_accumulation_steps=grad_accum if use_ds else 1,
            log_with=list(trackers) or None,
            project_config=ProjectConfiguration(
                project_dir=str(output_dir), logging_dir=str(output_dir / "trackers")
            ),
        )
    except ValueError as err:
        first = str(err).strip().splitlines()[0]
        hint = " (fp16 needs a GPU; use bf16 or fp32 on CPU)" if precision == "fp16" else ""
        raise ConfigError(f"train.precision={precision}: accelerate refused it: {first}{hint}") from None


def _check_accelerator(accelerator: Accelerator, train: TrainConfig, own: bool) -> dict[str, Any]:
    """Validate a given Accelerator against the config; return extra kwargs for `backward`."""
    from accelerate.utils import DistributedType

    if not own and accelerator.mixed_precision != PRECISION_TO_ACCELERATE[train.precision]:
        raise ConfigError(
            f"train.precision={train.precision} but the Accelerator passed in uses "
            f"mixed_precision={accelerator.mixed_precision!r}; make them agree"
        )
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        # accelerate accepts this but then trains in plain fp32, without autocast or loss scaling.
        raise ConfigError("train.precision=fp16 needs a GPU; use bf16 or fp32 on CPU")
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        # The loop hands out its own batches, so accelerate cannot infer DeepSpeed's "auto" sizes.
        if ds.get("train_micro_batch_size_per_gpu", "auto") == "auto":
            ds["train_micro_batch_size_per_gpu"] = train.batch_size
        if accelerator.gradient_accumulation_steps != train.grad_accum:
            raise ConfigError(
                f"train.grad_accum={train.grad_accum} but the DeepSpeed config accumulates "
                f"{accelerator.gradient_accumulation_steps} micro-batches; make them agree"
            )
        # The loop already divides by the items of the whole step: DeepSpeed must not divide again.
        return {"scale_wrt_gas": False}
    if accelerator.gradient_accumulation_steps != 1:
        raise ConfigError(
            "the Accelerator passed to train() has gradient_accumulation_steps="
            f"{accelerator.gradient_accumulation_steps}; leave it at 1 and set train.grad_accum instead"
        )
    return {}


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    # Non-reentrant checkpointing handles frozen inputs and keyword arguments correctly.
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    elif hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    else:
        raise ConfigError(
            f"train.gradient_checkpointing: {type(model).__name__} does not support it; set it to false"
        )
    if hasattr(model, "peft_config"):
        # With frozen embeddings nothing entering the first checkpointed block requires grad, and a
        # model forcing reentrant checkpointing would then give the adapters no gradient.
        model.enable_input_require_grads()


# ------------------------------------------------------------------------------------ the loop


def train(
    model: torch.nn.Module,
    step_fn: StepFn,
    count_items: ItemCountFn,
    data: Sequence | BatchSource,
    collate_fn: Callable[[list], dict[str, torch.Tensor]] | None = None,
    *,
    output_dir: Path,
    train: TrainConfig,
    optim: OptimConfig,
    schedule: ScheduleConfig,
    eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    accelerator: Accelerator | None = None,
    example_length: LengthFn | None = None,
) -> TrainResult:
    """Train `model` with `step_fn` on `data`; checkpoint and log into `output_dir`; resume if asked.

    `data` is a `BatchSource`, or a sequence read in epochs with `collate_fn` (an `EpochSource`);
    `example_length` is needed only with `train.group_by_length` (see the module docstring).
    """
    from accelerate.utils import set_seed

    output_dir = Path(output_dir)
    source = data if isinstance(data, BatchSource) else EpochSource(
        data, collate_fn, example_length=example_length
    )
    own_accelerator = accelerator is None
    if accelerator is None:
        accelerator = build_accelerator(train.precision, train.trackers, output_dir, train.grad_accum)
    backward_kwargs = _check_accelerator(accelerator, train, own_accelerator)
    is_main, device, world = accelerator.is_main_process, accelerator.device, accelerator.num_processes
    metrics_path = output_dir / "metrics.jsonl"

    # Dropout (and any sampling in a step function) draws from the global RNGs; a resume restores
    # their checkpointed state below, so seeding here only matters for a fresh start.
    set_seed(train.seed)
    # Hugging Face models load in eval mode, which would silently switch dropout off.
    model.train()
    if train.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    optimizer = build_optimizer(model, optim)

    total_steps = source.plan(RunInfo(train, world, accelerator.process_index, device))
    scheduler = build_scheduler(
        optimizer, total_steps=total_steps, kind=schedule.kind, warmup_steps=schedule.warmup_steps,
        warmup_ratio=schedule.warmup_ratio, min_lr_ratio=schedule.min_lr_ratio,
    )
    compile_kw = compile_options(train)  # a bad backend fails before any work
    # Model and optimizer are prepared together (FSDP replaces the parameters). The scheduler is
    # not prepared, since accelerate would step it once per process; it is only checkpointed.
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    # A LoRA checkpoint holds the adapter and its optimizer state, not the frozen base model again.
    checkpoint_hooks = ckpt.register_trainable_only(accelerator)

    try:
        state, last_good = ckpt.restore_or_start(accelerator, output_dir, train.resume, metrics_path)
    except BaseException:
        for hook in checkpoint_hooks:
            hook.remove()
        raise
    if last_good is not None:
        source.load_state_dict(ckpt.load_source_state(last_good, accelerator.process_index))
    state.total_steps = total_steps
    if last_good is not None and is_main:
        print(f"resuming from step {state.global_step} of {total_steps} ({last_good})", file=sys.stderr,
              flush=True)
    trackers_on = own_accelerator and bool(train.trackers)
    if trackers_on:
        accelerator.init_trackers("alignlab", config=_flat_config(train, optim, schedule))

    # A bar on a terminal, plain lines every 30 s in a log file (alignlab.progress).
    progress = Progress("train", total_steps, completed=state.global_step, enabled=is_main and train.progress)
    clip_to = optim.max_grad_norm if optim.max_grad_norm is not None else math.inf
    t_run = time.perf_counter() - state.elapsed_s  # elapsed time continues across resumes
    window = _Window()
    # Compiled after preparation, so DDP / FSDP wrap the module as loaded; only the step function
    # runs compiled, and the weights keep their own names (alignlab.training.compiled).
    compiled = CompiledBlocks(model, compile_kw) if compile_kw is not None else None
    try:
        while state.global_step < total_steps:
            step = state.global_step + 1
            # The source may run the model to make its data (RL rollouts) and act on the last step's metrics.
            data_step = source.next_step(model, state.last_metrics)
            batches = [_to_device(b, device) for b in data_step.batches]
            items = [int(count_items(b)) for b in batches]
            # The denominator is every item of this optimizer step on every process, known before
            # any backward; DDP then averages gradients over processes, hence the x world size.
            step_items = int(_all_sum(accelerator, [sum(items)])[0])
            scale = world / max(step_items, 1)

            loss_sum = torch.zeros((), device=device)
            metric_sums: dict[str, float] = {}
            for i, (batch, n) in enumerate(zip(batches, items, strict=True)):
                last = i == len(batches) - 1
                # Gradients are reduced across processes only on the last micro-batch of the step
                # (DDP no_sync; DeepSpeed reads sync_gradients as its accumulation boundary).
                accelerator.gradient_state._set_sync_gradients(last)
                with nullcontext() if last else accelerator.no_sync(model), accelerator.autocast():
                    # Autocast covers the whole step, so models a step function owns besides the
                    # trained one (a DPO reference, a reward model) run in the same precision.
                    with compiled.active() if compiled is not None else nullcontext():
                        out = step_fn(model, batch)
                    accelerator.backward(out.loss * scale, **backward_kwargs)
                loss_sum += out.loss.detach().float()
                for k, v in out.metrics.items():
                    metric_sums[k] = metric_sums.get(k, 0.0) + float(v) * n
            tokens = sum(_count_tokens(b) for b in batches)
            del batches, out

            keys, source_keys = sorted(metric_sums), sorted(data_step.metrics)
            totals = _all_sum(accelerator, [float(loss_sum), tokens, *(metric_sums[k] for k in keys),
                                            *(data_step.metrics[k] for k in source_keys)])
            step_loss = totals[0] / max(step_items, 1)
            # A non-finite loss means the weights are about to be ruined: stop before the update,
            # with every process agreeing (the value was all-reduced).
            if not math.isfinite(step_loss):
                raise _non_finite(step, "loss", step_loss, last_good)
            norm = accelerator.clip_grad_norm_(model.parameters(), clip_to)  # None: DeepSpeed clips itself
            grad_norm = float(norm) if norm is not None else math.nan
            # Under fp16 an inf norm is the loss scaler's overflow: it skips the step and rescales.
            if norm is not None and not math.isfinite(grad_norm) and accelerator.mixed_precision != "fp16":
                raise _non_finite(step, "gradient norm", grad_norm, last_good)
            lr = scheduler.get_last_lr()[0]  # the lr this update uses
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            where = source.position()
            state.global_step, state.epoch, state.epoch_position = step, where.epoch, where.consumed

            window.add(step_items, totals[1])
            row: dict[str, Any] = {
                "step": step,
                "epoch": where.epochs,
                "loss": step_loss,
                "lr": lr,
                "grad_norm": grad_norm,
                "items": step_items,
                **window.rates(),
                "elapsed_s": round(time.perf_counter() - t_run, 3),
            }
            for k, total in zip(keys, totals[2:2 + len(keys)], strict=True):
                row.setdefault(k, total / max(step_items, 1))
            for k, total in zip(source_keys, totals[2 + len(keys):], strict=True):
                row.setdefault(k, total / world)  # the mean of the processes' figures
            if accelerator.optimizer_step_was_skipped:  # fp16 overflow: the scaler skipped the update
                row["skipped_update"] = 1
            evaluate = eval_fn is not None and (
                step == total_steps or (train.eval_every is not None and step % train.eval_every == 0)
            )
            if evaluate:
                # Every process evaluates: an FSDP or DeepSpeed forward is collective.
                row.update({f"eval/{k}": float(v) for k, v in eval_fn(model).items()})
                model.train()  # eval_fn may leave the model in eval mode
            if evaluate or step == total_steps or step % train.log_every == 0:
                if is_main:
                    append_jsonl(metrics_path, row)
                accelerator.log({k: v for k, v in row.items() if k != "step"}, step=step)
                window.reset()
            progress.update(step, info=f"loss {step_loss:.4f}  lr {lr:.2e}")

            state.last_metrics, state.elapsed_s = row, row["elapsed_s"]
            # Saved after eval and logging, so the checkpointed RNG state is the one the next step sees.
            # The final step is saved only when asked to keep it: its checkpoints go once the run is done.
            final = step == total_steps
            if (final and train.keep_final_checkpoint) or (
                not final and train.save_every is not None and step % train.save_every == 0
            ):
                last_good = ckpt.save_checkpoint(accelerator, output_dir, state, train.keep_last,
                                                 source.state_dict())
    finally:
        progress.close()
        for hook in checkpoint_hooks:
            hook.remove()
        accelerator.gradient_state._set_sync_gradients(True)
        if trackers_on:
            for tracker in accelerator.trackers:  # not end_training(): it destroys the process group
                tracker.finish()

    # A finished stage is marked done and never resumed: its checkpoints (weights, optimizer
    # moments, RNG; three times the model) would only fill the disk.
    if is_main and not train.keep_final_checkpoint:
        ckpt.remove_all(output_dir)
    accelerator.wait_for_everyone()
    return TrainResult(
        model=accelerator.unwrap_model(model, keep_fp32_wrapper=False),
        global_step=state.global_step,
        metrics_path=metrics_path,
        last_metrics=dict(state.last_metrics),
        state_dict=accelerator.get_state_dict(model),  # collective: every process calls it
        is_main_process=is_main,
    )


# ------------------------------------------------------------------------------------ helpers


def _all_sum(accelerator: Accelerator, values: list[float]) -> list[float]:
    """Sum a few scalars over processes in one collective (float64: token counts stay exact)."""
    dtype = torch.float32 if accelerator.device.type == "mps" else torch.float64
    t = torch.tensor(values, dtype=dtype, device=accelerator.device)
    if accelerator.num_processes > 1:
        t = accelerator.reduce(t, reduction="sum")
    return t.tolist()


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _count_tokens(batch: dict[str, Any]) -> int:
    """Real tokens in a batch: attention-mask ones, else input-id entries; 0 if it has neither."""
    masks = [v for k, v in batch.items() if k.endswith("attention_mask") and torch.is_tensor(v)]
    if masks:
        return int(sum(int(m.sum()) for m in masks))
    return sum(v.numel() for k, v in batch.items() if k.endswith("input_ids") and torch.is_tensor(v))


class _Window:
    """Items and tokens since the last logged step, for throughput."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.t0, self.items, self.tokens = time.perf_counter(), 0.0, 0.0

    def add(self, items: float, tokens: float) -> None:
        self.items += items
        self.tokens += tokens

    def rates(self) -> dict[str, float]:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        out = {"items_per_s": round(self.items / dt, 2)}
        if self.tokens:
            out["tokens_per_s"] = round(self.tokens / dt, 2)
        return out


def _non_finite(step: int, what: str, value: float, last_good: Path | None) -> TrainingError:
    where = (
        f"the last good checkpoint is {last_good} (train.resume=true continues from it)"
        if last_good
        else "no checkpoint was written yet"
    )
    return TrainingError(
        f"step {step}: the training {what} became {value} (nan/inf); {where}; lower optim.lr, "
        "check the data for broken or empty examples, or train in fp32 or bf16 rather than fp16 "
        "(train.precision), then rerun"
    )


def _flat_config(train: TrainConfig, optim: OptimConfig, schedule: ScheduleConfig) -> dict[str, Any]:
    """Hyperparameters for trackers, which accept only scalars."""
    out: dict[str, Any] = {}
    for prefix, section in (("train", train), ("optim", optim), ("schedule", schedule)):
        for k, v in section.model_dump().items():
            if v is not None:
                out[f"{prefix}.{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
