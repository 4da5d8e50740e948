"""Supervised fine-tuning (instruction tuning) on conversations.

Supports full fine-tuning and LoRA, padding or packing, loss on every assistant turn or only the
last one. Does not support: multimodal inputs, or on-the-fly chat-format conversion of raw text
(give conversations in any format `alignlab.data.readers` reads).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from alignlab.config import DataConfig, SFTConfig
from alignlab.data.collators import collate_packed, pack_examples, pad_batch
from alignlab.data.readers import read_conversations
from alignlab.data.schema import Conversation, Message
from alignlab.data.splits import holdout
from alignlab.data.templating import EncodedExample, encode_conversation, ensure_chat_template, has_targets
from alignlab.errors import DataError
from alignlab.losses.sft import IGNORE_INDEX, token_nll
from alignlab.modeling.loading import apply_lora, count_parameters, load_causal_lm, load_tokenizer
from alignlab.stage_io import StageContext, save_trained_model
from alignlab.training.loop import StepOutput, train


@dataclass(frozen=True)
class EncodedSplit:
    train: list
    eval: list
    skipped_records: int
    dropped_empty: int


def encode_dataset(tokenizer, data: DataConfig, log: Callable[[str], None] = print) -> EncodedSplit:
    """Read, template, tokenize and split the conversations of `data`."""
    result = read_conversations(data.path, data.format, split=data.split, skip_invalid=data.skip_invalid, limit=data.limit)
    if result.skipped:
        log(f"skipped {result.skipped} malformed records of {data.path}")
    if result.excluded:  # KTO records: only a desirable completion is a demonstration
        log(f"left out {result.excluded} record{'s' * (result.excluded != 1)} labelled undesirable "
            f"(label false) in {data.path}; SFT learns only the desirable ones")
    convs = [_with_system(c, data.system_prompt) for c in result.records]
    eval_convs: list[Conversation] = []
    if data.eval_path:
        eval_convs = [_with_system(c, data.system_prompt) for c in read_conversations(data.eval_path).records]
    else:
        convs, eval_convs = holdout(convs, data.eval_fraction)

    def encode_all(cs: Sequence[Conversation]) -> tuple[list[EncodedExample], int]:
        out, dropped = [], 0
        for c in cs:
            ex = encode_conversation(
                tokenizer, c.messages, max_length=data.max_length, only_last_turn=data.only_last_turn,
                tools=c.metadata.get("tools"),  # function schemas, for templates that render them
            )
            # Truncation can cut every assistant token, and empty replies are not learned: such an
            # example teaches nothing.
            if has_targets(ex):
                out.append(ex)
            else:
                dropped += 1
        return out, dropped

    train_ex, dropped = encode_all(convs)
    eval_ex, _ = encode_all(eval_convs)
    if dropped:
        log(f"dropped {dropped} examples with nothing to learn: their assistant turns are empty or lie "
            f"past data.max_length={data.max_length}")
    if not train_ex:
        raise DataError(f"{data.path}: no trainable example left (raise data.max_length or check the data)")
    if data.packing:
        train_ex = pack_examples(train_ex, data.max_length)
        eval_ex = pack_examples(eval_ex, data.max_length) if eval_ex else []
    return EncodedSplit(train_ex, eval_ex, result.skipped, dropped)


def _with_system(conv: Conversation, system_prompt: str | None) -> Conversation:
    if system_prompt is None or conv.messages[0].role == "system":
        return conv
    return conv.model_copy(update={"messages": [Message(role="system", content=system_prompt), *conv.messages]})


def make_collate(pad_token_id: int, packing: bool) -> Callable:
    if packing:
        return lambda rows: collate_packed(rows, pad_token_id)
    return lambda examples: pad_batch(examples, pad_token_id)


def count_target_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Items the SFT loss sums over: target tokens after the next-token shift."""
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def sft_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    # No KV cache in training; with a cache, transformers ignores the packed-row boundaries in position_ids.
    logits = model(**inputs, use_cache=False).logits
    nll = token_nll(logits, labels)
    n = max(int(nll.num_tokens), 1)
    return StepOutput(loss=nll.total, metrics={"nll": float(nll.total.detach()) / n})


def make_eval_fn(examples: list, collate: Callable, batch_size: int) -> Callable[[torch.nn.Module], dict[str, float]]:
    """Mean per-token NLL and perplexity of the assistant tokens of held-out examples."""

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for i in range(0, len(examples), batch_size):
            batch = {k: v.to(device) for k, v in collate(examples[i : i + batch_size]).items()}
            out = sft_step(model, batch)
            total += float(out.loss)
            count += count_target_tokens(batch)
        model.train(was_training)
        mean = total / max(count, 1)
        return {"loss": mean, "ppl": math.exp(min(mean, 50.0))}

    return evaluate


def run_sft(config: SFTConfig, ctx: StageContext) -> dict[str, float]:
    """Fine-tune `config.model` on `config.data`; save model (or adapter) + tokenizer to ctx.output_dir."""
    m = config.model
    tokenizer = load_tokenizer(m.path, allow_hub=m.allow_hub, revision=m.revision, trust_remote_code=m.trust_remote_code)
    ensure_chat_template(tokenizer)
    split = encode_dataset(tokenizer, config.data, ctx.log)
    model = load_causal_lm(
        m.path, allow_hub=m.allow_hub, revision=m.revision, dtype=m.dtype, device=m.device,
        attn_implementation=m.attn_implementation, trust_remote_code=m.trust_remote_code,
    )
    if config.lora.enabled:
        lo = config.lora
        model = apply_lora(model, r=lo.r, alpha=lo.alpha, dropout=lo.dropout, target_modules=lo.target_modules)
    trainable, total = count_parameters(model)
    ctx.log(f"sft: {len(split.train)} training rows, {len(split.eval)} eval rows; "
            f"{trainable:,} of {total:,} parameters trainable")
    collate = make_collate(tokenizer.pad_token_id, config.data.packing)
    eval_fn = make_eval_fn(split.eval, collate, config.train.batch_size) if split.eval else None
    result = train(
        model, sft_step, count_target_tokens, split.train, collate,
        output_dir=ctx.output_dir, train=config.train, optim=config.optim, schedule=config.schedule,
        eval_fn=eval_fn, example_length=len,  # an EncodedExample or a packed row: its tokens
    )
    save_trained_model(result, tokenizer, ctx.output_dir)
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, (int, float))}
    summary["steps"] = float(result.global_step)
    summary["train_rows"] = float(len(split.train))
    return summary

