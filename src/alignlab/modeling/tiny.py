"""Tiny models and tokenizers built locally from scratch.

The laboratory pretrains one of these; tests build them for several architectures (Llama, Qwen2,
GPT-2) so every stage runs on the same code path as a real Hugging Face checkpoint, offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

Arch = Literal["llama", "qwen2", "gpt2"]
ARCHES: tuple[str, ...] = ("llama", "qwen2", "gpt2")

BOS = "<|begin_of_text|>"
EOS = "<|endoftext|>"
PAD = "<|pad|>"
# Special tokens of the common chat templates, so a test tokenizer can render any of them as
# single tokens (ChatML, Llama-3, Zephyr-style).
CHAT_SPECIALS: tuple[str, ...] = (
    "<|im_start|>",
    "<|im_end|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 512,
    *,
    extra_special_tokens: Sequence[str] = CHAT_SPECIALS,
    chat_template: str | None = None,
    model_max_length: int = 2048,
):
    """Train a byte-level BPE tokenizer on `texts` and wrap it as a `PreTrainedTokenizerFast`.

    Byte-level BPE round-trips any text exactly (decode(encode(s)) == s), which the loss-mask
    tests rely on. BOS / EOS / PAD are distinct special tokens, as in most modern checkpoints.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [BOS, EOS, PAD, *[t for t in extra_special_tokens if t not in (BOS, EOS, PAD)]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=specials[3:],
        model_max_length=model_max_length,
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def tiny_model_config(
    arch: Arch,
    vocab_size: int,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int | None = None,
    intermediate_size: int | None = None,
    max_positions: int = 2048,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    tie_word_embeddings: bool = True,
):
    """A small `PretrainedConfig` of the given architecture."""
    from transformers import GPT2Config, LlamaConfig, Qwen2Config

    ids = dict(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    inter = intermediate_size or 4 * hidden_size
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden_size,
            n_layer=num_layers,
            n_head=num_heads,
            n_inner=inter,
            n_positions=max_positions,
            tie_word_embeddings=tie_word_embeddings,
            **ids,
        )
    cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}.get(arch)
    if cls is None:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {', '.join(ARCHES)}")
    return cls(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=inter,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tie_word_embeddings,
        **ids,
    )


def build_tiny_model(arch: Arch, tokenizer, *, seed: int = 0, **sizes):
    """A randomly initialised causal LM of `arch` sized for `tokenizer` (deterministic in `seed`)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_model_config(
        arch,
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **sizes,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def save_tiny_model(
    out_dir: str | Path,
    arch: Arch,
    texts: Iterable[str],
    *,
    vocab_size: int = 512,
    chat_template: str | None = None,
    seed: int = 0,
    **sizes,
) -> Path:
    """Train a tokenizer on `texts`, build a random `arch` model, save both as an HF directory."""
    out = Path(out_dir)
    tok = train_bpe_tokenizer(texts, vocab_size, chat_template=chat_template)
    model = build_tiny_model(arch, tok, seed=seed, **sizes)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
