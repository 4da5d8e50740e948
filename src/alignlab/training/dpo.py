"""The DPO family: one step function for every registered preference loss, driven by its `LossSpec`.

Supports every loss in `alignlab.losses.registry` (DPO, cDPO, IPO, SLiC-HF, KTO, ORPO, SimPO):
the spec says whether the loss takes reference log-probs, an NLL term, summed or length-averaged
log-probs, and paired or unpaired data; the step never branches on a loss name. Chosen and
rejected go through the policy in one concatenated forward pass, with log-probs computed from
hidden states chunk by chunk (`alignlab.modeling.logprobs`). Reference log-probs come from the
on-disk cache filled by a pre-pass (`alignlab.training.refcache`, the default: no reference model
in memory while training), or from a live reference model; for LoRA runs the policy with its
adapters disabled is the reference. Full fine-tuning or LoRA.

Metrics per step: loss, implicit rewards of chosen / rejected, their margin and accuracy, summed
chosen / rejected log-probs and, when a reference is available, `kl`: the mean sequence log-ratio
log πθ(y|x) − log πref(y|x) over the batch's responses (the estimator KTO uses for its reference
point; on off-policy data it is an estimate, not the exact KL).

Not supported: packing, online / iterative DPO (sampling new pairs), KTO's cross-process KL
all-gather (each micro-batch estimates its own reference point).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from alignlab.config import DataConfig, DPOConfig
from alignlab.data.collators import pad_batch
from alignlab.data.readers import read_feedback
from alignlab.data.templating import encode_prompt_response, ensure_chat_template, fit_to_length, has_targets
from alignlab.errors import DataError
from alignlab.losses.registry import LossSpec, get_loss
from alignlab.modeling.logprobs import (
    SequenceLogps,
    TokenBatch,
    concatenated_sequence_logps,
    model_sequence_logps,
)
from alignlab.stage_io import StageContext, save_trained_model
from alignlab.training import refcache
from alignlab.training.loop import StepOutput, train
from alignlab.training.reward import encode_preference_split, split_records, with_system_prompt

Tensor = torch.Tensor
Item = dict[str, Any]  # sides -> EncodedExample, "label" (unpaired), "ref_<side>" -> float (cached)
ReferenceFn = Callable[[torch.nn.Module, dict[str, Tensor]], dict[str, Tensor]]
PAIRED_SIDES = ("chosen", "rejected")
UNPAIRED_SIDES = ("completion", "kl")  # kl: the prompt with another record's completion (KTO's z0)


def sides_of(spec: LossSpec) -> tuple[str, str]:
    return PAIRED_SIDES if spec.paired else UNPAIRED_SIDES


# ------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class PreferenceData:
    train: list[Item]
    eval: list[Item]
    dropped: int


def encode_unpaired(tokenizer, records: Sequence, data: DataConfig) -> list[Item]:
    """KTO items: each completion, its label, and its prompt paired with the next record's completion."""
    items = []
    for rec in records:
        prompt = with_system_prompt(list(rec.prompt), data.system_prompt)
        tools = rec.metadata.get("tools")
        ex = fit_to_length(encode_prompt_response(tokenizer, prompt, rec.completion, tools=tools), data.max_length)
        if has_targets(ex):
            items.append({"prompt": prompt, "tools": tools, "response": rec.completion, "completion": ex,
                          "label": rec.label})  # fmt: skip
    for i, item in enumerate(items):
        # A fixed mismatch (i, i + 1) keeps the cached reference valid whatever the batch order.
        other = items[(i + 1) % len(items)]["response"]
        mismatched = encode_prompt_response(tokenizer, item["prompt"], other, tools=item["tools"])
        item["kl"] = fit_to_length(mismatched, data.max_length)
    return [{k: v for k, v in it.items() if k not in ("prompt", "tools", "response")} for it in items]


def encode_preference_data(tokenizer, data: DataConfig, spec: LossSpec, log: Callable[[str], None]) -> PreferenceData:
    """Training and held-out items for `spec`: pairs (ties dropped), or labelled completions."""
    if spec.paired:
        split = encode_preference_split(tokenizer, data, keep_ties=False, log=log)
        to_items = lambda pairs: [{"chosen": p.chosen, "rejected": p.rejected} for p in pairs]  # noqa: E731
        return PreferenceData(to_items(split.train), to_items(split.eval), split.dropped)
    result = read_feedback(data.path, data.format, split=data.split, skip_invalid=data.skip_invalid, limit=data.limit)
    if result.skipped:
        log(f"skipped {result.skipped} malformed records of {data.path}")
    train_recs, eval_recs = split_records(result.records, data, read_feedback)
    train_items = encode_unpaired(tokenizer, train_recs, data)
    if not train_items:
        raise DataError(f"{data.path}: no usable record left (check the data or raise data.max_length)")
    return PreferenceData(train_items, encode_unpaired(tokenizer, eval_recs, data), len(train_recs) - len(train_items))


def make_collate(sides: tuple[str, str], pad_token_id: int) -> Callable[[list[Item]], dict[str, Tensor]]:
    """Per side `<side>_input_ids / _attention_mask / _labels` (B, T); `label`, `ref_<side>` (B,)."""

    def collate(items: list[Item]) -> dict[str, Tensor]:
        batch: dict[str, Tensor] = {}
        for side in sides:
            padded = pad_batch([it[side] for it in items], pad_token_id)
            batch.update({f"{side}_{k}": v for k, v in padded.items()})
            if f"ref_{side}" in items[0]:
                batch[f"ref_{side}"] = torch.tensor([it[f"ref_{side}"] for it in items], dtype=torch.float32)
        if "label" in items[0]:
            batch["label"] = torch.tensor([it["label"] for it in items], dtype=torch.bool)
        return batch

    return collate


def count_items(batch: dict[str, Tensor]) -> int:
    """Pairs (paired losses) or completions (unpaired): what the loss sums over."""
    key = "chosen_input_ids" if "chosen_input_ids" in batch else "completion_input_ids"
    return int(batch[key].shape[0])


def make_item_length(sides: tuple[str, str]) -> Callable[[Item], int]:
    """Padded width an item brings to a batch: the longer of its two sides."""
    return lambda item: max(len(item[side]) for side in sides)


def _tokens(batch: dict[str, Tensor], side: str) -> TokenBatch:
    return TokenBatch(batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"], batch[f"{side}_labels"])


# ------------------------------------------------------------------------------------ step


def _policy_logps(model: torch.nn.Module, batch: dict[str, Tensor], spec: LossSpec, pad: int) -> dict[str, SequenceLogps]:
    if spec.paired:
        both = concatenated_sequence_logps(model, _tokens(batch, "chosen"), _tokens(batch, "rejected"), pad_token_id=pad)
        return {"chosen": both.chosen, "rejected": both.rejected}
    out = {"completion": model_sequence_logps(model, _tokens(batch, "completion"))}
    with torch.no_grad():  # KTO's reference point is a detached baseline
        out["kl"] = model_sequence_logps(model, _tokens(batch, "kl"))
    return out


def _reference(model, batch: dict[str, Tensor], sides, reference: ReferenceFn | None) -> dict[str, Tensor] | None:
    """(B,) summed reference log-probs per side: live, from the batch (cache), or None."""
    if reference is not None:
        return reference(model, batch)
    if f"ref_{sides[0]}" in batch:
        return {s: batch[f"ref_{s}"] for s in sides}
    return None


def _as_kind(logps: Tensor, num_tokens: Tensor, kind: str) -> Tensor:
    return logps / num_tokens.clamp(min=1) if kind == "mean" else logps


def make_preference_step(
    spec: LossSpec, params: dict[str, float], *, pad_token_id: int, reference: ReferenceFn | None = None
) -> Callable[[torch.nn.Module, dict[str, Tensor]], StepOutput]:
    """Step for any registered loss: feeds `spec.fn` what its spec asks for; returns the loss SUM."""
    sides = sides_of(spec)

    def step(model: torch.nn.Module, batch: dict[str, Tensor]) -> StepOutput:
        pol = _policy_logps(model, batch, spec, pad_token_id)
        ref = _reference(model, batch, sides, reference)
        if spec.needs_reference and ref is None:
            raise ValueError(f"loss {spec.name!r} needs reference log-probs: cache them or pass a live reference")
        val = {s: _as_kind(pol[s].logps, pol[s].num_tokens, spec.logps) for s in sides}
        rval = {s: _as_kind(ref[s], pol[s].num_tokens, spec.logps) for s in sides} if ref is not None else None
        kwargs: dict[str, Any] = dict(params)
        if spec.paired:
            select = [slice(None), slice(None)]
            a, b = sides
        else:
            label = batch["label"]
            select, a, b = [label, ~label], "completion", "completion"
        args = [val[a][select[0]], val[b][select[1]]]
        if spec.needs_reference:
            args += [rval[a][select[0]], rval[b][select[1]]]
        if spec.needs_nll:
            args.append(-_as_kind(pol[a].logps, pol[a].num_tokens, spec.nll)[select[0]])
        metrics: dict[str, float] = {}
        if "kl" in spec.estimated:
            # KTO's z0: the policy/reference log-ratio on mismatched (prompt, completion) pairs.
            z0 = (pol["kl"].logps - ref["kl"]).mean().detach() if ref is not None else 0.0
            kwargs["kl"] = z0
            metrics["kl"] = float(z0)
        elif ref is not None:
            # Sequence log-ratio on the batch's responses (summed log-probs, whatever the loss uses).
            metrics["kl"] = float(torch.cat([pol[s].logps.detach() - ref[s] for s in sides]).mean())
        res = spec.fn(*args, **kwargs)
        metrics.update(_reward_metrics(res.chosen_rewards, res.rejected_rewards, spec.paired))
        for name, side, sel in (("chosen", a, select[0]), ("rejected", b, select[1])):
            summed = pol[side].logps.detach()[sel]
            if summed.numel():  # an unpaired batch may hold no undesirable (or desirable) example
                metrics[f"logps/{name}"] = float(summed.mean())
        if spec.needs_nll:
            metrics["nll"] = float(args[-1].detach().mean())
        return StepOutput(loss=res.losses.sum(), metrics=metrics)

    return step


def _reward_metrics(chosen: Tensor, rejected: Tensor, paired: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    if chosen.numel():
        out["rewards/chosen"] = float(chosen.mean())
    if rejected.numel():
        out["rewards/rejected"] = float(rejected.mean())
    if paired:
        out["rewards/margin"] = float((chosen - rejected).mean())
        out["rewards/accuracy"] = float((chosen > rejected).float().mean())
    elif chosen.numel() and rejected.numel():
        out["rewards/margin"] = out["rewards/chosen"] - out["rewards/rejected"]
    return out


def make_eval_fn(step, items: list[Item], collate, batch_size: int) -> Callable[[torch.nn.Module], dict[str, float]]:
    """Mean loss and metrics of the step on held-out items (no gradient, eval mode)."""

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        loss, count, sums = 0.0, 0, {}
        for i in range(0, len(items), batch_size):
            batch = {k: v.to(device) for k, v in collate(items[i : i + batch_size]).items()}
            out, n = step(model, batch), count_items(batch)
            loss, count = loss + float(out.loss), count + n
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + v * n
        model.train(was_training)
        return {"loss": loss / max(count, 1), **{k: v / max(count, 1) for k, v in sums.items()}}

    return evaluate


# ------------------------------------------------------------------------------------ reference


def live_reference(ref_model: torch.nn.Module | None, sides: tuple[str, str], pad: int) -> ReferenceFn:
    """Reference log-probs computed each step: by `ref_model`, or (None) by the LoRA policy with adapters off."""

    @torch.no_grad()
    def reference(model: torch.nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        target = ref_model if ref_model is not None else getattr(model, "module", model)  # DDP wrapper
        was_training = target.training
        target.eval()
        with nullcontext() if ref_model is not None else target.disable_adapter():
            if sides == PAIRED_SIDES:
                both = concatenated_sequence_logps(target, _tokens(batch, "chosen"), _tokens(batch, "rejected"), pad_token_id=pad)
                out = {"chosen": both.chosen.logps, "rejected": both.rejected.logps}
            else:
                out = {s: model_sequence_logps(target, _tokens(batch, s)).logps for s in sides}
        target.train(was_training)
        return out

    return reference


def attach_cached_reference(
    data: PreferenceData, sides, reference_model: Callable[[], AbstractContextManager], identity: dict, *,
    settings: dict, cache_path, pad: int, batch_size: int, log: Callable[[str], None],
) -> None:  # fmt: skip
    """Fill `ref_<side>` of every item from the cache, computing it first if missing or stale.

    `reference_model()` is a context manager giving the model that computes the reference (it is
    only entered when the cache must be computed, and frees that model on exit).
    """
    splits = (("train", data.train), ("eval", data.eval))
    sequences = {f"{split}/{s}": [it[s] for it in items] for split, items in splits for s in sides if items}
    key = refcache.cache_key(identity, sequences, settings)

    def compute() -> dict[str, Tensor]:
        with reference_model() as model:
            return refcache.compute_in_shares(
                sequences, lambda share: refcache.compute_sequence_logps(model, share, pad_token_id=pad, batch_size=batch_size)
            )  # fmt: skip

    tensors = refcache.load_or_compute(cache_path, key, compute, log)
    for name, values in tensors.items():
        if name in sequences:  # "<split>/<side>"; the "_tokens" counts are not needed here
            split, side = name.split("/")
            for it, v in zip(data.train if split == "train" else data.eval, values.tolist(), strict=True):
                it[f"ref_{side}"] = v


# ------------------------------------------------------------------------------------ stage


def run_dpo(config: DPOConfig, ctx: StageContext) -> dict[str, float]:
    """Align `config.model` on `config.data` with `config.loss`; save the policy (or adapter)."""
    from alignlab.modeling.loading import apply_lora, count_parameters, load_causal_lm, load_tokenizer

    spec, m, ref_cfg = get_loss(config.loss), config.model, config.reference
    load = dict(allow_hub=m.allow_hub, revision=m.revision, dtype=m.dtype, device=m.device,
                attn_implementation=m.attn_implementation, trust_remote_code=m.trust_remote_code)  # fmt: skip
    tokenizer = load_tokenizer(m.path, allow_hub=m.allow_hub, revision=m.revision, trust_remote_code=m.trust_remote_code)
    ensure_chat_template(tokenizer)
    data = encode_preference_data(tokenizer, config.data, spec, ctx.log)
    model = load_causal_lm(m.path, **load)
    if config.lora.enabled:
        lo = config.lora
        model = apply_lora(model, r=lo.r, alpha=lo.alpha, dropout=lo.dropout, target_modules=lo.target_modules)
    pad, sides = tokenizer.pad_token_id, sides_of(spec)
    base_as_ref = config.lora.enabled and ref_cfg.path is None
    ref_path = ref_cfg.path or m.path
    reference_fn: ReferenceFn | None = None
    mode = "none"
    if spec.needs_reference or ref_cfg.log_kl:
        if ref_cfg.cache:
            mode = "cached"
            identity = {"adapters_disabled" if base_as_ref else "model": refcache.weights_identity(ref_path, m.revision)}
            attach_cached_reference(
                data, sides, lambda: _prepass_reference(model, base_as_ref, ref_cfg.path, load), identity,
                settings={"dtype": str(next(model.parameters()).dtype)}, cache_path=ctx.output_dir / refcache.CACHE_FILE,
                pad=pad, batch_size=ref_cfg.batch_size, log=ctx.log,
            )  # fmt: skip
        else:
            mode = "live"
            ref_model = None if base_as_ref else load_causal_lm(ref_path, **load).eval().requires_grad_(False)
            reference_fn = live_reference(ref_model, sides, pad)
    trainable, total = count_parameters(model)
    ctx.log(f"dpo ({spec.name}): {len(data.train)} training items, {len(data.eval)} held-out; reference {mode}; "
            f"{trainable:,} of {total:,} parameters trainable")  # fmt: skip
    step = make_preference_step(spec, dict(config.loss_params), pad_token_id=pad, reference=reference_fn)
    collate = make_collate(sides, pad)
    eval_fn = make_eval_fn(step, data.eval, collate, config.train.batch_size) if data.eval else None
    result = train(
        model, step, count_items, data.train, collate, output_dir=ctx.output_dir, train=config.train,
        optim=config.optim, schedule=config.schedule, eval_fn=eval_fn, example_length=make_item_length(sides),
    )  # fmt: skip
    save_trained_model(result, tokenizer, ctx.output_dir)
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, int | float)}
    summary.update(steps=float(result.global_step), train_items=float(len(data.train)), dropped=float(data.dropped))
    return summary


@contextmanager
def _prepass_reference(policy, base_as_ref: bool, ref_path: str | None, load: dict) -> Iterator:
    """The model of the pre-pass: the policy itself, still at its initial weights (adapters off for
    LoRA), unless a separate reference model is named; that one is freed on exit."""
    from alignlab.modeling.loading import load_causal_lm

    if base_as_ref:
        with policy.disable_adapter():
            yield policy
    elif ref_path is None:
        yield policy
    else:
        ref = load_causal_lm(ref_path, **load)
        try:
            yield ref
        finally:
            del ref
            gc.collect()
