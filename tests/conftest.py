"""Shared fixtures: a tiny byte-level BPE tokenizer and tiny Llama / Qwen2 / GPT-2 model directories.

Both are built offline with `alignlab.modeling.tiny` once per test run. `tiny_tokenizer` is a
fresh object per test, so a test may change its chat template freely.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from alignlab.data.templating import DEFAULT_CHAT_TEMPLATE
from alignlab.modeling.tiny import CHAT_SPECIALS, build_tiny_model, train_bpe_tokenizer

# Gemma-style turn markers, so tests can render that family's template with single tokens too.
GEMMA_SPECIALS = ("<start_of_turn>", "<end_of_turn>")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello! How can I help you today? I am a helpful assistant.",
    "What is the capital of France? The capital of France is Paris.",
    "Please write a short poem about the sea and the sky.",
    "system user assistant tool model answer question reply",
    'The weather in Paris is sunny, 21 degrees. {"city": "Paris", "unit": "celsius"}',
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100. Lists, commas; colons: and (brackets).",
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
]

# Compact versions of the real templates (the test for templating carries fuller ones).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim }}"
    "{{ '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
# GPT-2 checkpoints ship no template; the toolkit's default stands in.
ARCH_TEMPLATES = {"llama": LLAMA3_TEMPLATE, "qwen2": CHATML_TEMPLATE, "gpt2": DEFAULT_CHAT_TEMPLATE}


def pytest_configure(config: pytest.Config) -> None:
    # The test machines are small and shared: one intra-op thread keeps parallel runs responsive.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the shared tiny tokenizer (vocab 400, no chat template)."""
    out = tmp_path_factory.mktemp("tiny_tokenizer")
    tok = train_bpe_tokenizer(CORPUS * 4, 400, extra_special_tokens=(*CHAT_SPECIALS, *GEMMA_SPECIALS))
    tok.save_pretrained(out)
    return out


@pytest.fixture
def tiny_tokenizer(tiny_tokenizer_dir: Path):
    """A fresh `PreTrainedTokenizerFast` (BOS/EOS/PAD + ChatML, Llama-3, Gemma specials; no template)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path
) -> Callable[[str], Path]:
    """Factory: `tiny_model_dir("llama" | "qwen2" | "gpt2")` -> saved HF directory with a chat template.

    Random weights (seed 0), hidden 32, 2 layers, 4 heads; built once per architecture per test run.
    """
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    cache: dict[str, Path] = {}

    def make(arch: str) -> Path:
        if arch not in cache:
            out = tmp_path_factory.mktemp(f"tiny_{arch}")
            tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
            tok.chat_template = ARCH_TEMPLATES[arch]
            model = build_tiny_model(
                arch, tok, seed=0, hidden_size=32, num_layers=2, num_heads=4, max_positions=256
            )
            was_enabled = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # the fixture's own save must not print into a test's stderr
            try:
                model.save_pretrained(out)
            finally:
                if was_enabled:
                    hf_logging.enable_progress_bar()
            tok.save_pretrained(out)
            cache[arch] = out
        return cache[arch]

    return make


@pytest.fixture(autouse=True)
def _private_run_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test records runs in its own run index, never in the user's home directory."""
    monkeypatch.setenv("ALIGNLAB_RUN_INDEX", str(tmp_path / "runs.sqlite"))
