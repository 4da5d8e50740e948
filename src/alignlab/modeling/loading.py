"""Load causal LMs and tokenizers from a local directory or (only when asked) the hub; add LoRA.

Every stage loads models through here, the laboratory's tiny models included, so there is one code
path for a 3 M parameter lab model and a 7 B checkpoint.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignlab.errors import ConfigError, ModelLoadError

if TYPE_CHECKING:
    from alignlab.config import LoRAConfig, ModelConfig

ADAPTER_CONFIG = "adapter_config.json"


def resolve_device(name: str = "auto"):
    """'auto' -> cuda, then mps, then cpu; an explicit device that is missing is a ConfigError."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "config key 'model.device': cuda was asked for but no CUDA GPU is available; use cpu or auto"
        )
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(
            "config key 'model.device': mps was asked for but is not available; use cpu or auto"
        )
    return torch.device(name)


def resolve_dtype(name: str, device) -> Any:
    """'auto' -> bfloat16 on GPUs that support it, else float32."""
    import torch

    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def check_model_source(path: str, allow_hub: bool) -> bool:
    """True when `path` is a local directory; raise a clear error when it is neither local nor allowed."""
    p = Path(path).expanduser()
    if p.is_dir():
        return True
    if p.exists():
        raise ModelLoadError(
            f"{path}: is a file, not a model directory; give the directory holding config.json"
        )
    if allow_hub and looks_like_hub_id(path):
        return False
    raise ModelLoadError(f"model directory '{path}' not found: {missing_model_hint(path)}")


def looks_like_hub_id(path: str) -> bool:
    """`org/name`: what a Hugging Face hub id looks like (a relative two-part path does too)."""
    return path.count("/") == 1 and not path.startswith((".", "/", "~"))


def missing_model_hint(path: str, allow_hub_key: str = "model.allow_hub") -> str:
    """What to do about a model path that is no local directory."""
    where = "give a local Hugging Face model directory"
    if looks_like_hub_id(path):
        return f"{where}, or set {allow_hub_key}=true to download this hub id"
    return f"{where}; check the path"


def load_tokenizer(path: str, *, allow_hub: bool = False, revision: str | None = None,
                   trust_remote_code: bool = False):
    """Tokenizer with a pad token (eos when the checkpoint has none) and right padding for training."""
    from transformers import AutoTokenizer

    local = check_model_source(path, allow_hub)
    src = (
        _adapter_base(path)
        if local and (Path(path) / ADAPTER_CONFIG).exists() and not _has_tokenizer(path)
        else path
    )
    if Path(src).is_dir() and not _has_tokenizer(src):
        raise ModelLoadError(
            f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the tokenizer into the model "
            "directory (tokenizer.save_pretrained)"
        )
    try:
        tok = AutoTokenizer.from_pretrained(
            src, revision=revision, local_files_only=not allow_hub, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: cannot load a tokenizer ({first_line(err)})") from None
    if tok.pad_token is None:
        # Padding positions are masked out of attention and loss, so reusing eos is safe.
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def load_causal_lm(
    path: str,
    *,
    allow_hub: bool = False,
    revision: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    merge_adapter: bool = True,
):
    """Load a causal LM; a LoRA adapter directory loads its base model with the adapter applied.

    With `merge_adapter` the adapter is merged into the weights, so the result trains and saves like
    any full model (a later stage may add a fresh adapter on top).
    """
    from transformers import AutoModelForCausalLM

    check_model_source(path, allow_hub)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    is_adapter = Path(path, ADAPTER_CONFIG).exists()
    base = _adapter_base(path) if is_adapter else path
    kwargs: dict[str, Any] = dict(
        revision=None if is_adapter else revision,
        local_files_only=not allow_hub,
        trust_remote_code=trust_remote_code,
        dtype=torch_dtype,
    )
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        if is_adapter and Path(base, ADAPTER_CONFIG).exists():
            # Trained on a model that was itself base + adapter (merged): rebuild that model first.
            model = load_causal_lm(base, allow_hub=allow_hub, dtype=dtype, device=device,
                                   attn_implementation=attn_implementation,
                                   trust_remote_code=trust_remote_code)
        else:
            model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{base}: cannot load a causal LM ({first_line(err)})") from None
    if is_adapter:
        from peft import PeftModel

        with quiet_peft_deprecations():
            model = PeftModel.from_pretrained(model, path)
        if not merge_adapter:
            return model.to(dev)
        model = model.merge_and_unload()
    if Path(path).expanduser().is_dir():
        # An adapter trained on this model records it as its base (peft reads `name_or_path`): this
        # directory, merged adapter included, by an absolute path, which resolves from anywhere.
        model.name_or_path = str(Path(path).expanduser().resolve())
    return model.to(dev)


def load_options(model: ModelConfig) -> dict[str, Any]:
    """Every setting of a `model` section but its path, as the keyword arguments of the loaders here
    and in `alignlab.modeling.reward_model` (which take the fields' names): a field added to the
    section reaches every loader, or fails loudly at the first load."""
    return model.model_dump(exclude={"path"})


def load_model(
    model: ModelConfig, lora: LoRAConfig | None = None, *, seed: int = 0, merge_adapter: bool = True
):
    """The causal LM a `model` section names, with every one of its settings, and fresh LoRA
    adapters drawn with `seed` (the stage's train.seed) when `lora` is enabled. Every stage that
    loads a causal LM loads it through here."""
    lm = load_causal_lm(model.path, merge_adapter=merge_adapter, **load_options(model))
    if lora is not None and lora.enabled:
        lm = apply_lora(
            lm, r=lora.r, alpha=lora.alpha, dropout=lora.dropout, target_modules=lora.target_modules,
            seed=seed,
        )
    return lm


def load_model_tokenizer(model: ModelConfig, *, chat_template: bool = True):
    """The tokenizer of a `model` section; with `chat_template`, one is set if the checkpoint has none."""
    tok = load_tokenizer(
        model.path, allow_hub=model.allow_hub, revision=model.revision,
        trust_remote_code=model.trust_remote_code
    )
    if chat_template:
        from alignlab.data.templating import ensure_chat_template

        ensure_chat_template(tok)
    return tok


def apply_lora(
    model, *, r: int, alpha: float, dropout: float, target_modules: list[str] | str, seed: int | None = None
):
    """Wrap `model` with trainable LoRA adapters (all other weights frozen).

    The adapters' random half (lora_A) is drawn from the global RNG; `seed` fixes it, so the same
    config trains the same adapters whatever ran before in the process.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM"
    )
    if seed is not None:
        torch.manual_seed(seed)
    try:
        with quiet_peft_deprecations():
            return get_peft_model(model, cfg)
    except ValueError as err:
        raise ConfigError(f"config key 'lora.target_modules': {first_line(err)}") from None


@contextmanager
def quiet_peft_deprecations() -> Iterator[None]:
    """Silence the one FutureWarning peft triggers in transformers on every LoRA model it wraps
    (peft reads `is_gradient_checkpointing`, deprecated in transformers 5 for
    `is_activation_checkpointing`): the user can do nothing about it. Other warnings pass."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated",
                                category=FutureWarning)
        yield


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def _adapter_base(path: str) -> str:
    cfg = json.loads(Path(path, ADAPTER_CONFIG).read_text())
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(
            f"{path}/{ADAPTER_CONFIG}: no base_model_name_or_path; cannot find the base model"
        )
    return base


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
# Older checkpoints may hold only a slow tokenizer's vocabulary files.
_VOCAB_FILES = ("vocab.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")


def _has_tokenizer(path: str) -> bool:
    return any(Path(path, f).exists() for f in (*TOKENIZER_FILES, *_VOCAB_FILES))


def first_line(err: BaseException, limit: int = 300) -> str:
    """A library's error message as one line: its lines joined (a first line may end in a colon that
    introduces the rest), cut at `limit` characters."""
    text = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
    if not text:
        return type(err).__name__
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
