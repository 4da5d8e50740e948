"""Causal language modelling on raw text: a base model from scratch, or continued pretraining.

From scratch, a byte-level BPE tokenizer is trained on the corpus and saved with a chat template, so
the result is an ordinary Hugging Face directory that every later stage loads like a real
checkpoint. Documents are packed whole into rows of `seq_len` tokens (longer ones are split), with
attention kept inside each document. Does not support: streaming corpora larger than memory.
"""

from __future__ import annotations

import json
from pathlib import Path

from alignlab.config import PretrainConfig
from alignlab.data.collators import collate_packed, pack_examples
from alignlab.data.splits import holdout
from alignlab.data.templating import DEFAULT_CHAT_TEMPLATE, EncodedExample
from alignlab.errors import DataError
from alignlab.generation.hf import stop_token_ids
from alignlab.modeling.loading import count_parameters, load_causal_lm, load_tokenizer
from alignlab.modeling.tiny import build_tiny_model, train_bpe_tokenizer
from alignlab.stage_io import StageContext, save_model_artefacts
from alignlab.training.loop import train
from alignlab.training.sft import count_target_tokens, make_eval_fn, sft_step

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
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    out = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids = bos + ids + eos
        for i in range(0, len(ids) - 1, seq_len):
            piece = ids[i : i + seq_len]
            out.append(EncodedExample(piece, list(piece)))
    return out


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
        m = config.model
        tokenizer = load_tokenizer(m.path, allow_hub=m.allow_hub, revision=m.revision)
        model = load_causal_lm(m.path, allow_hub=m.allow_hub, revision=m.revision, dtype=m.dtype, device=m.device)
    docs, eval_docs = holdout(docs, config.data.eval_fraction)
    seq = config.data.seq_len
    rows = pack_examples(encode_documents(tokenizer, docs, seq), seq)
    eval_rows = pack_examples(encode_documents(tokenizer, eval_docs, seq), seq) if eval_docs else []
    trainable, total = count_parameters(model)
    n_tokens = sum(len(r) for r in rows)
    ctx.log(f"pretrain: {len(docs)} documents, {n_tokens:,} tokens in {len(rows)} rows; {total:,} parameters")

    def collate(batch):
        return collate_packed(batch, tokenizer.pad_token_id)

    eval_fn = make_eval_fn(eval_rows, collate, config.train.batch_size) if eval_rows else None
    result = train(
        model, sft_step, count_target_tokens, rows, collate,
        output_dir=ctx.output_dir, train=config.train, optim=config.optim, schedule=config.schedule, eval_fn=eval_fn,
    )
    save_model_artefacts(result.model, tokenizer, ctx.output_dir)
    (ctx.output_dir / "corpus_stats.json").write_text(json.dumps({"documents": len(docs), "tokens": n_tokens}))
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, (int, float))}
    summary.update(parameters=float(total), train_tokens=float(n_tokens), steps=float(result.global_step))
    return summary
