"""The DPO family: a paired and an unpaired step function, fed by each registered loss's `LossSpec`.

Supports every loss in `alignlab.losses.registry` (`alignlab losses` lists them; none is named here,
so a newly registered one needs no edit): the spec's `inputs` picks the step ("paired":
chosen/rejected pairs; "unpaired": labelled completions, KTO), and the spec says whether the loss
takes reference log-probs, an NLL term, summed or length-averaged log-probs, and which arguments the
step estimates from each batch; no step branches on a loss name. Chosen and rejected go through the
policy in one (2B, T) forward pass (`alignlab.data.preference.collate_pairs`), with log-probs
computed from hidden states chunk by chunk (`alignlab.modeling.logprobs`). Reference log-probs come
from the on-disk cache filled by a pre-pass (the default: no reference model in memory while
training), or from a live reference model; for LoRA runs the policy with its adapters disabled is
the reference (`alignlab.training.reference`). Full fine-tuning or LoRA.

Metrics per step: loss, implicit rewards of chosen / rejected, their margin and accuracy (a margin
within `TIE_TOL` of 0 counts as a tie, half a win), summed
chosen / rejected log-probs and, when a reference is available, `kl`: the mean sequence log-ratio
log πθ(y|x) − log πref(y|x) over the batch's responses (the estimator KTO uses for its reference
point; on off-policy data it is an estimate, not the exact KL).

Not supported: data.packing, online / iterative DPO (sampling new pairs), KTO's cross-process KL
all-gather (each micro-batch estimates its own reference point).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from alignlab.config import DPOConfig
from alignlab.data.layout import BatchLayout
from alignlab.data.preference import (
    FEEDBACK_SIDES,
    PAIR_SIDES,
    collate_feedback,
    collate_pairs,
    count_feedback,
    count_pairs,
    encode_feedback_split,
    encode_preference_split,
    item_width,
)
from alignlab.data.splits import EncodedSplit
from alignlab.losses.registry import LossSpec, get_loss
from alignlab.losses.reward import pairwise_accuracy
from alignlab.modeling.attention import choose_backend, choose_layout
from alignlab.modeling.inference import model_device, run_batches
from alignlab.modeling.logprobs import SequenceLogps, batch_sequence_logps
from alignlab.stage_io import StageContext, save_trained_model
from alignlab.training import refcache
from alignlab.training.loop import StepOutput, train
from alignlab.training.reference import (
    ReferenceFn,
    attach_cached_reference,
    cached_reference,
    live_reference,
    precision_autocast,
    prepass_reference,
)

Tensor = torch.Tensor
Step = Callable[[torch.nn.Module, dict[str, Tensor]], StepOutput]
# Implicit-reward margins this close to 0 are ties (half a win): at step 1 the policy is the
# reference, and a reference cached in other batches differs from it by float rounding (~1e-6 per
# sequence), which would otherwise count as wins or losses at random. Metrics print 4 decimals.
TIE_TOL = 1e-4


@dataclass(frozen=True)
class Shape:
    """How one input shape of the registry is encoded, batched, counted and run."""

    sides: tuple[str, str]
    encode: Callable[..., EncodedSplit]  # (tokenizer, data, *, log) -> split
    collate: Callable[[list, int], dict[str, Tensor]]
    count: Callable[[dict[str, Tensor]], int]
    sides_logps: Callable[[torch.nn.Module, dict[str, Tensor]], dict[str, SequenceLogps]]
    make_step: Callable[..., Step]


# ------------------------------------------------------------------------------------ log-probs


def pair_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> dict[str, SequenceLogps]:
    """Chosen and rejected log-probs from one forward pass over the pair batch ((2B, T) padded, or
    laid out with each pair's prompt once)."""
    both = batch_sequence_logps(model, batch)
    n = count_pairs(batch)
    return {
        "chosen": SequenceLogps(both.logps[:n], both.num_tokens[:n]),
        "rejected": SequenceLogps(both.logps[n:], both.num_tokens[n:]),
    }


def feedback_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> dict[str, SequenceLogps]:
    return {side: batch_sequence_logps(model, batch, f"{side}_") for side in FEEDBACK_SIDES}


def _as_kind(logps: Tensor, num_tokens: Tensor, kind: str) -> Tensor:
    return logps / num_tokens.clamp(min=1) if kind == "mean" else logps


def _kl_metric(pol: dict[str, SequenceLogps], ref: dict[str, Tensor]) -> float:
    """Mean sequence log-ratio on the batch's responses (summed log-probs, whatever the loss uses)."""
    return float(torch.cat([pol[s].logps.detach() - ref[s] for s in ref]).mean())


def _reference(model, batch, sides, spec: LossSpec,
               reference: ReferenceFn | None) -> dict[str, Tensor] | None:
    ref = reference(model, batch) if reference is not None else cached_reference(batch, sides)
    if spec.needs_reference and ref is None:
        raise ValueError(f"loss {spec.name!r} needs reference log-probs: cache them or pass a live reference")
    return ref


# ------------------------------------------------------------------------------------ steps


def make_paired_step(spec: LossSpec, params: dict[str, float], *,
                     reference: ReferenceFn | None = None) -> Step:
    """Step of a paired loss on `collate_pairs` batches; returns the loss SUM over pairs."""
    if spec.estimated:
        raise ValueError(
            f"loss {spec.name!r}: the paired step estimates nothing per batch, got {spec.estimated}"
        )

    def step(model: torch.nn.Module, batch: dict[str, Tensor]) -> StepOutput:
        pol = pair_logps(model, batch)
        ref = _reference(model, batch, PAIR_SIDES, spec, reference)
        chosen, rejected = (_as_kind(pol[s].logps, pol[s].num_tokens, spec.logps) for s in PAIR_SIDES)
        args = [chosen, rejected]
        if spec.needs_reference:
            args += [_as_kind(ref[s], pol[s].num_tokens, spec.logps) for s in PAIR_SIDES]
        metrics = {"kl": _kl_metric(pol, ref)} if ref is not None else {}
        nll = -_as_kind(pol["chosen"].logps, pol["chosen"].num_tokens, spec.nll) if spec.needs_nll else None
        return _finish(spec, args, dict(params), metrics, nll, pol["chosen"].logps, pol["rejected"].logps)

    return step


def _kto_reference_point(pol: dict[str, SequenceLogps], ref: dict[str, Tensor] | None) -> Tensor | float:
    """KTO's z0: the policy/reference log-ratio on mismatched (prompt, completion) pairs, detached."""
    return (pol["kl"].logps - ref["kl"]).mean().detach() if ref is not None else 0.0


ESTIMATES = {"kl": _kto_reference_point}  # what the unpaired step can estimate from a batch


def make_unpaired_step(spec: LossSpec, params: dict[str, float], *,
                       reference: ReferenceFn | None = None) -> Step:
    """Step of an unpaired loss on `collate_feedback` batches: the desirable completions are its
    "chosen", the undesirable ones its "rejected" (of different counts); returns the loss SUM."""
    unknown = [k for k in spec.estimated if k not in ESTIMATES]
    if unknown:
        raise ValueError(
            f"loss {spec.name!r} asks for {unknown} estimated per batch; "
            f"the unpaired step knows {list(ESTIMATES)}"
        )

    def step(model: torch.nn.Module, batch: dict[str, Tensor]) -> StepOutput:
        pol = {"completion": batch_sequence_logps(model, batch, "completion_")}
        with torch.no_grad():  # the mismatched side only gives KTO's reference point, a detached baseline
            pol["kl"] = batch_sequence_logps(model, batch, "kl_")
        ref = _reference(model, batch, FEEDBACK_SIDES, spec, reference)
        good, bad = batch["label"], ~batch["label"]
        completion = pol["completion"]
        value = _as_kind(completion.logps, completion.num_tokens, spec.logps)
        args = [value[good], value[bad]]
        if spec.needs_reference:
            ref_value = _as_kind(ref["completion"], completion.num_tokens, spec.logps)
            args += [ref_value[good], ref_value[bad]]
        kwargs, metrics = dict(params), {}
        for name in spec.estimated:
            kwargs[name] = ESTIMATES[name](pol, ref)
            metrics[name] = float(kwargs[name])
        if ref is not None and "kl" not in metrics:
            metrics["kl"] = _kl_metric(pol, ref)
        nll = -_as_kind(completion.logps, completion.num_tokens, spec.nll)[good] if spec.needs_nll else None
        return _finish(spec, args, kwargs, metrics, nll, completion.logps[good], completion.logps[bad])

    return step


def _finish(spec: LossSpec, args: list, kwargs: dict, metrics: dict[str, float], nll: Tensor | None,
            chosen_logps: Tensor, rejected_logps: Tensor) -> StepOutput:
    """Call the loss and add the metrics every step logs."""
    if nll is not None:
        args.append(nll)
    res = spec.fn(*args, **kwargs)
    metrics.update(_reward_metrics(res.chosen_rewards, res.rejected_rewards, spec.paired))
    for name, logps in (("chosen", chosen_logps), ("rejected", rejected_logps)):
        if logps.numel():  # an unpaired batch may hold no undesirable (or desirable) example
            metrics[f"logps/{name}"] = float(logps.detach().mean())
    if nll is not None:
        metrics["nll"] = float(nll.detach().mean())
    return StepOutput(loss=res.losses.sum(), metrics=metrics)


def _reward_metrics(chosen: Tensor, rejected: Tensor, paired: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    if chosen.numel():
        out["rewards/chosen"] = float(chosen.mean())
    if rejected.numel():
        out["rewards/rejected"] = float(rejected.mean())
    if paired:
        out["rewards/margin"] = float((chosen - rejected).mean())
        out["rewards/accuracy"] = pairwise_accuracy(chosen, rejected, tie_tol=TIE_TOL)
    elif chosen.numel() and rejected.numel():
        out["rewards/margin"] = out["rewards/chosen"] - out["rewards/rejected"]
    return out


SHAPES: dict[str, Shape] = {
    # Ties are no preference for a policy: dropped (a reward model keeps them as 0.5 targets).
    "paired": Shape(PAIR_SIDES, functools.partial(encode_preference_split, keep_ties=False), collate_pairs,
                    count_pairs, pair_logps, make_paired_step),
    "unpaired": Shape(FEEDBACK_SIDES, encode_feedback_split, collate_feedback, count_feedback, feedback_logps,
                      make_unpaired_step),
}


def make_preference_step(spec: LossSpec, params: dict[str, float], *,
                         reference: ReferenceFn | None = None) -> Step:
    """The step of `spec`'s input shape."""
    return SHAPES[spec.inputs].make_step(spec, params, reference=reference)


def make_eval_fn(
    step: Step, items: list, collate, count, batch_size: int
) -> Callable[[torch.nn.Module], dict[str, float]]:
    """Mean loss and metrics of the step on held-out items (no gradient, eval mode)."""

    def forward(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[StepOutput, int]:
        return step(model, batch), count(batch)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        loss, total, sums = 0.0, 0, {}
        for _, (out, n) in run_batches(model, items, collate, forward, batch_size=batch_size):
            loss, total = loss + float(out.loss), total + n
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + v * n
        return {"loss": loss / max(total, 1), **{k: v / max(total, 1) for k, v in sums.items()}}

    return evaluate


# ------------------------------------------------------------------------------------ stage


def batch_layout(model: torch.nn.Module, config: DPOConfig, *,
                 training: bool = True) -> tuple[BatchLayout | None, str]:
    """How this stage lays out `model`'s batches (`train.padding_free`, `train.prefix_sharing`)."""
    t = config.train
    return choose_layout(model, padding_free=t.padding_free, prefix_sharing=t.prefix_sharing,
                         attention=t.packed_attention, pairs=get_loss(config.loss).inputs == "paired",
                         training=training)


def _cached_reference(data: EncodedSplit, shape: Shape, model: torch.nn.Module, config: DPOConfig,
                      ctx: StageContext, pad: int, base_as_ref: bool) -> EncodedSplit:
    """`data` with cached reference log-probs, from the pre-pass (run in the training precision)."""
    from alignlab.modeling.loading import load_model

    ref_cfg = config.reference
    ref_model_config = config.model.model_copy(update={"path": ref_cfg.path or config.model.path})
    weights = refcache.weights_identity(ref_model_config.path, config.model.revision)
    identity = {"adapters_disabled" if base_as_ref else "model": weights}
    separate = (lambda: load_model(ref_model_config)) if ref_cfg.path is not None else None

    def prepass() -> AbstractContextManager[torch.nn.Module]:
        return prepass_reference(model, adapters_off=base_as_ref, load_separate=separate)

    def collate_for(reference: torch.nn.Module) -> Callable[[list], dict[str, Tensor]]:
        layout, why = batch_layout(reference, config, training=False)
        ctx.log(f"reference pre-pass: {why}")
        return functools.partial(shape.collate, pad_token_id=pad, layout=layout)

    settings = {"dtype": str(next(model.parameters()).dtype), "precision": config.train.precision}
    return attach_cached_reference(
        data, shape.sides, prepass, identity, settings=settings, cache_path=ctx.path("reference_logps"),
        collate_for=collate_for, sides_logps=shape.sides_logps, length=item_width,
        batch_size=ref_cfg.batch_size, log=ctx.log,
        precision=lambda: precision_autocast(config.train.precision, model_device(model)),
    )


def run_dpo(config: DPOConfig, ctx: StageContext) -> dict[str, float]:
    """Align `config.model` on `config.data` with `config.loss`; save the policy (or adapter)."""
    from alignlab.modeling.loading import count_parameters, load_model, load_model_tokenizer

    spec, ref_cfg = get_loss(config.loss), config.reference
    shape = SHAPES[spec.inputs]
    tokenizer = load_model_tokenizer(config.model)
    data = shape.encode(tokenizer, config.data, log=ctx.log)
    model = load_model(config.model, config.lora, seed=config.train.seed)
    pad = tokenizer.pad_token_id
    base_as_ref = config.lora.enabled and ref_cfg.path is None
    reference_fn: ReferenceFn | None = None
    ref_model = None
    mode = "none"
    if spec.needs_reference or ref_cfg.log_kl:
        mode = "cached" if ref_cfg.cache else "live"
        if ref_cfg.cache:
            data = _cached_reference(data, shape, model, config, ctx, pad, base_as_ref)
        else:
            ref_path = ref_cfg.path or config.model.path
            ref_model = None if base_as_ref else load_model(
                config.model.model_copy(update={"path": ref_path})).eval().requires_grad_(False)
            reference_fn = live_reference(ref_model, shape.sides_logps)
    layout, why = batch_layout(model, config)
    ref_backend = choose_backend(ref_model, layout.attention)[0] if layout and ref_model is not None else None
    if layout is not None and ref_model is not None and ref_backend != layout.attention:
        layout, why = None, f"padded batches: the reference model cannot take {layout.attention} attention"
    trainable, total = count_parameters(model)
    ctx.log(
        f"dpo ({spec.name}): {len(data.train)} training items, {len(data.eval)} held-out; reference {mode}; "
        f"{trainable:,} of {total:,} parameters trainable; {why}"
    )
    step = shape.make_step(spec, dict(config.loss_params), reference=reference_fn)
    collate = functools.partial(shape.collate, pad_token_id=pad, layout=layout)
    eval_fn = make_eval_fn(step, data.eval, collate, shape.count,
                           config.train.batch_size) if data.eval else None
    result = train(
        model, step, shape.count, data.train, collate, output_dir=ctx.output_dir, train=config.train,
        optim=config.optim, schedule=config.schedule, eval_fn=eval_fn, example_length=item_width,
    )
    save_trained_model(result, tokenizer, ctx.output_dir)
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, int | float)}
    summary.update(steps=float(result.global_step), train_items=float(len(data.train)),
                   dropped=float(data.dropped))
    return summary
