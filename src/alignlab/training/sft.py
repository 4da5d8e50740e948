"""Supervised fine-tuning (instruction tuning) on conversations.

Supports full fine-tuning and LoRA, padding-free batches (the default where the model allows
them: a micro-batch's examples end to end in one row, attention kept inside each), padding or
packing, loss on every assistant turn or only the last one. Does not support: multimodal inputs,
or on-the-fly chat-format conversion of raw text (give conversations in any format
`alignlab.data.readers` reads).
"""

from __future__ import annotations

from collections.abc import Callable

from alignlab.config import DataConfig, SFTConfig
from alignlab.data.collators import collate_packed, pack_examples, pad_batch
from alignlab.data.layout import BatchLayout, lay_out_sequences
from alignlab.data.preference import with_system_prompt
from alignlab.data.readers import read_conversations
from alignlab.data.schema import Conversation
from alignlab.data.splits import EncodedSplit, encode_split, read_split
from alignlab.data.templating import EncodedExample, encode_conversation, has_targets
from alignlab.modeling.attention import choose_layout
from alignlab.modeling.loading import count_parameters, load_model, load_model_tokenizer
from alignlab.stage_io import StageContext, save_trained_model
from alignlab.training.causal_lm import count_target_tokens, make_eval_fn, nll_step
from alignlab.training.loop import train


def encode_dataset(tokenizer, data: DataConfig, log: Callable[[str], None] = print) -> EncodedSplit:
    """Read, template, tokenize and split the conversations of `data` (packed rows with data.packing)."""

    def encode(conv: Conversation) -> EncodedExample | None:
        ex = encode_conversation(
            tokenizer, with_system_prompt(conv.messages, data.system_prompt), max_length=data.max_length,
            only_last_turn=data.only_last_turn,
            tools=conv.metadata.get("tools"),  # schemas, for templates that render them
        )
        # Truncation can cut every assistant token, and empty replies are not learned: such an
        # example teaches nothing.
        return ex if has_targets(ex) else None

    why = f"nothing to learn: their assistant turns are empty or lie past data.max_length={data.max_length}"
    split = encode_split(read_split(read_conversations, data, log), encode, data, what="examples", why=why,
                         log=log)
    if not data.packing:
        return split
    train = pack_examples(split.train, data.max_length)
    held = pack_examples(split.eval, data.max_length) if split.eval else []
    return EncodedSplit(train, held, split.skipped_records, split.dropped)


def make_collate(pad_token_id: int, packing: bool, layout: BatchLayout | None = None) -> Callable:
    if packing:
        return lambda rows: collate_packed(rows, pad_token_id)
    if layout is not None:
        return lambda examples: lay_out_sequences(examples, pad_token_id, layout)
    return lambda examples: pad_batch(examples, pad_token_id)


def batch_layout(model, config: SFTConfig) -> tuple[BatchLayout | None, str]:
    """Padding-free batches where the model allows them (`train.padding_free`; not with data.packing)."""
    if config.data.packing:
        return None, "packed rows (data.packing)"
    t = config.train
    return choose_layout(model, padding_free=t.padding_free, prefix_sharing=False,
                         attention=t.packed_attention, pairs=False)


def run_sft(config: SFTConfig, ctx: StageContext) -> dict[str, float]:
    """Fine-tune `config.model` on `config.data`; save model (or adapter) + tokenizer to ctx.output_dir."""
    tokenizer = load_model_tokenizer(config.model)
    split = encode_dataset(tokenizer, config.data, ctx.log)
    model = load_model(config.model, config.lora, seed=config.train.seed)
    trainable, total = count_parameters(model)
    layout, why = batch_layout(model, config)
    ctx.log(f"sft: {len(split.train)} training rows, {len(split.eval)} eval rows; "
            f"{trainable:,} of {total:,} parameters trainable; {why}")
    collate = make_collate(tokenizer.pad_token_id, config.data.packing, layout)
    eval_fn = make_eval_fn(split.eval, collate, config.train.batch_size) if split.eval else None
    result = train(
        model, nll_step, count_target_tokens, split.train, collate,
        output_dir=ctx.output_dir, train=config.train, optim=config.optim, schedule=config.schedule,
        eval_fn=eval_fn, example_length=len,  # an EncodedExample or a packed row: its tokens
    )
    save_trained_model(result, tokenizer, ctx.output_dir)
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, (int, float))}
    summary["steps"] = float(result.global_step)
    summary["train_rows"] = float(len(split.train))
    return summary
