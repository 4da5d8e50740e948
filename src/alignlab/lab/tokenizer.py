"""The lab tokenizer: byte-level BPE trained on the corpus, with a compact ChatML chat template.

The corpus never contains chat markup, so the template's text pieces (the role names) are added to
the training texts; `<|im_start|>` and `<|im_end|>` are special tokens. The base model therefore
meets the chat format for the first time in SFT, as a real base model does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
# Written without whitespace between tags so Jinja's trim settings cannot change the output.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 1024
    model_max_length: int = 256

    def __post_init__(self) -> None:
        if not 300 <= self.vocab_size <= 65536:
            raise ValueError(f"vocab_size must be in [300, 65536], got {self.vocab_size}")


def template_pieces(repeat: int = 20) -> list[str]:
    """Texts that teach BPE the template's role headers, so each becomes one or two tokens."""
    return [f"{role}\n" for role in ROLES for _ in range(repeat)]


def train_lab_tokenizer(docs: Sequence[str], config: TokenizerConfig | None = None):
    """Train the lab's `PreTrainedTokenizerFast` on `docs` (deterministic for the same docs)."""
    from alignlab.modeling.tiny import train_bpe_tokenizer

    cfg = config or TokenizerConfig()
    return train_bpe_tokenizer(
        [*docs, *template_pieces()],
        cfg.vocab_size,
        extra_special_tokens=(IM_START, IM_END),
        chat_template=CHAT_TEMPLATE,
        model_max_length=cfg.model_max_length,
    )
