"""Causal language modelling on raw text: a base model from scratch, or continued pretraining.

From scratch, a byte-level BPE tokenizer is trained on the corpus and saved with a chat template, so
the result is an ordinary Hugging Face directory that every later stage loads like a real
checkpoint. Rows of `seq_len` tokens come from one of two packings (`data.packing`):
- documents: whole documents packed into rows (longer ones split), attention kept inside each;
- stream: GPT-style, the eos-separated stream of shuffled documents cut into rows, with a new
  shuffle and so new cuts every epoch. On a small corpus read for many epochs this is what lets the
  model recall a fact in any context: with the same rows every epoch it memorises each row whole
  (in the lab, held-out recall of town facts fell to about 10 %).
Does not support: streaming corpora larger than memory.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from alignlab.config import PretrainConfig
from alignlab.data.collators import collate_packed, pack_examples, pad_batch
from alignlab.data.splits import holdout
from alignlab.data.templating import DEFAULT_CHAT_TEMPLATE, EncodedExample
from alignlab.errors import DataError
from alignlab.generation.stops import stop_token_ids
from alignlab.io import atomic_write_text
from alignlab.modeling.loading import count_parameters, load_model, load_model_tokenizer
from alignlab.modeling.tiny import build_tiny_model, train_bpe_tokenizer
from alignlab.stage_io import StageContext, save_trained_model
from alignlab.training.causal_lm import count_target_tokens, make_eval_fn, nll_step
from alignlab.training.loop import train
from alignlab.training.sources import EpochSource

# Compact ChatML: the lab's tokenizers carry <|im_start|> / <|im_end|> as single special tokens.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
NAMED_TEMPLATES = {"chatml": CHATML_TEMPLATE, "default": DEFAULT_CHAT_TEMPLATE}


def read_documents(path: str | Path) -> list[str]:
    """Documents of a corpus file: `text` fields of JSON records, or blank-line-separated .txt blocks."""
    p = Path(path)
    if p.suffix == ".txt":
        docs = [d.strip() for d in p.read_text(encoding="utf-8").split("\n\n")]
    else:
        from alignlab.data.readers import iter_raw_records

        docs = []
        for where, rec in iter_raw_records(p):
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise DataError(f"{where}: expected an object with a string `text` field")
            docs.append(rec["text"].strip())
    docs = [d for d in docs if d]
    if not docs:
        raise DataError(f"{p}: no documents found")
    return docs


def encode_documents(tokenizer, docs: list[str], seq_len: int) -> list[EncodedExample]:
    """bos + text + eos per document, split into pieces of at most seq_len tokens."""
    out = []
    for ids in frame_documents(tokenizer, docs):
        for i in range(0, len(ids) - 1, seq_len):
            piece = ids[i : i + seq_len]
            out.append(EncodedExample(piece, list(piece)))
    return out


def stream_rows(token_docs: list[list[int]], seq_len: int, seed: int) -> list[EncodedExample]:
    """Shuffle the (already bos/eos-framed) documents with `seed`, concatenate, cut into seq_len rows.

    The short tail is dropped; rows start mid-document and attend across document boundaries, where
    eos tells the model one document ended.
    """
    order = list(range(len(token_docs)))
    random.Random(seed).shuffle(order)
    stream = [t for i in order for t in token_docs[i]]
    return [EncodedExample(stream[i : i + seq_len], stream[i : i + seq_len])
            for i in range(0, len(stream) - seq_len + 1, seq_len)]


def frame_documents(tokenizer, docs: list[str]) -> list[list[int]]:
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [bos + ids + eos for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]]


def stream_source(token_docs: list[list[int]], config: PretrainConfig, collate) -> EpochSource:
    """The loop's batch source for `data.packing=stream`: epoch k reads the rows of
    `stream_rows(token_docs, seq_len, train.seed + k)`, a new shuffle and new cuts every epoch, in
    the seeded order of `EpochSampler` (so a resume needs only the epoch and the position)."""
    seq, seed = config.data.seq_len, config.train.seed
    if sum(len(d) for d in token_docs) // seq == 0:
        raise DataError(f"{config.data.path}: the corpus is shorter than one row of seq_len={seq} tokens")
    return EpochSource(lambda epoch: stream_rows(token_docs, seq, seed + epoch), collate,
                       example_length=len)  # rows are all seq_len long: grouping changes nothing here


# Role headers the chat template renders as text: BPE learns them as whole tokens although the
# corpus never holds chat markup (the model meets the format first in SFT, as real base models do).
ROLE_HEADERS = [f"{role}\n" for role in ("system", "user", "assistant", "tool")] * 20


def build_from_scratch(config: PretrainConfig, docs: list[str]):
    init = config.init
    template = NAMED_TEMPLATES.get(init.chat_template, init.chat_template)
    tokenizer = train_bpe_tokenizer(
        [*docs, *ROLE_HEADERS], init.vocab_size, chat_template=template, model_max_length=init.max_positions
    )
    model = build_tiny_model(
        init.arch, tokenizer, seed=init.seed, hidden_size=init.hidden_size, num_layers=init.num_layers,
        num_heads=init.num_heads, num_kv_heads=init.num_kv_heads, intermediate_size=init.intermediate_size,
        max_positions=init.max_positions,
    )
    # So plain `model.generate` (outside alignlab) also stops at the end of an assistant turn.
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


def run_pretrain(config: PretrainConfig, ctx: StageContext) -> dict[str, float]:
    docs = read_documents(config.data.path)
    if config.init is not None:
        tokenizer, model = build_from_scratch(config, docs)
    else:
        # Raw text needs no chat template: the tokenizer is saved as the checkpoint had it.
        tokenizer = load_model_tokenizer(config.model, chat_template=False)
        model = load_model(config.model)
    docs, eval_docs = holdout(docs, config.data.eval_fraction)
    seq = config.data.seq_len

    def collate(batch):
        return collate_packed(batch, tokenizer.pad_token_id)

    if config.data.packing == "stream":
        token_docs = frame_documents(tokenizer, docs)
        data = stream_source(token_docs, config, lambda batch: pad_batch(batch, tokenizer.pad_token_id))
        n_tokens = sum(len(d) for d in token_docs)
    else:
        rows = pack_examples(encode_documents(tokenizer, docs, seq), seq)
        data = EpochSource(rows, collate, example_length=len)
        n_tokens = sum(len(r) for r in rows)
    eval_rows = pack_examples(encode_documents(tokenizer, eval_docs, seq), seq) if eval_docs else []
    trainable, total = count_parameters(model)
    ctx.log(
        f"pretrain: {len(docs)} documents, {n_tokens:,} tokens ({config.data.packing} packing); "
        f"{total:,} parameters"
    )

    eval_fn = make_eval_fn(eval_rows, collate, config.train.batch_size) if eval_rows else None
    result = train(
        model, nll_step, count_target_tokens, data, output_dir=ctx.output_dir, train=config.train,
        optim=config.optim, schedule=config.schedule, eval_fn=eval_fn,
    )
    save_trained_model(result, tokenizer, ctx.output_dir)
    if result.is_main_process:
        atomic_write_text(ctx.path("corpus_stats"), json.dumps({"documents": len(docs), "tokens": n_tokens}))
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, (int, float))}
    summary.update(parameters=float(total), train_tokens=float(n_tokens), steps=float(result.global_step))
    return summary
