"""Validated configs: one pydantic model per concern, YAML loading, dotted overrides.

Every field is described once (`Field(description=...)`); unknown keys, wrong types and bad values
raise `ConfigError` naming the dotted key. Configs are frozen after load: a stage never mutates
its config mid-run. Builders turn configs into plain arguments; classes never take a whole config.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alignlab.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are frozen after load."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------- per-concern sections


class ModelConfig(Section):
    path: str = Field(
        description="Local Hugging Face model directory, or a hub id when allow_hub is true.",
        json_schema_extra={"input": "model"},
    )
    allow_hub: bool = Field(
        default=False, description="Allow downloading `path` from the Hugging Face hub when it is no local dir."
    )
    revision: str | None = Field(default=None, description="Hub revision (branch, tag or commit) to load.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Weights dtype; auto = float32 on CPU, bfloat16 on GPUs that support it."
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="Where to run; auto picks cuda, then mps, then cpu."
    )
    attn_implementation: str | None = Field(
        default=None, description="Attention kernel (sdpa, eager, flash_attention_2); None = library default."
    )
    trust_remote_code: bool = Field(default=False, description="Run model code shipped with a hub repo.")


class LoRAConfig(Section):
    enabled: bool = Field(default=False, description="Train LoRA adapters instead of all weights.")
    r: int = Field(default=16, gt=0, description="LoRA rank.")
    alpha: float = Field(default=32.0, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        default="all-linear", description="Module names to adapt, or all-linear."
    )


class OptimConfig(Section):
    lr: float = Field(default=2e-5, gt=0, description="Peak learning rate of AdamW.")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW decoupled weight decay.")
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="AdamW betas.")
    eps: float = Field(default=1e-8, gt=0, description="AdamW epsilon.")
    max_grad_norm: float | None = Field(
        default=1.0, description="Clip the global gradient norm to this value; null disables clipping."
    )


class ScheduleConfig(Section):
    kind: Literal["cosine", "linear", "constant"] = Field(
        default="cosine", description="Learning-rate decay after warm-up."
    )
    warmup_steps: int = Field(default=0, ge=0, description="Linear warm-up steps (overrides warmup_ratio).")
    warmup_ratio: float = Field(default=0.0, ge=0, le=1, description="Warm-up as a share of total steps.")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="Final lr as a share of the peak lr.")


class TrainConfig(Section):
    """What the one training loop needs, whatever the method."""

    batch_size: int = Field(default=8, gt=0, description="Examples per micro-batch per device.")
    grad_accum: int = Field(default=1, gt=0, description="Micro-batches accumulated per optimizer step.")
    max_steps: int | None = Field(default=None, gt=0, description="Optimizer steps; overrides epochs.")
    epochs: float = Field(default=1.0, gt=0, description="Passes over the training data.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32", description="Mixed precision for forward and backward."
    )
    gradient_checkpointing: bool = Field(default=False, description="Recompute activations to save memory.")
    seed: int = Field(default=0, description="Seed for init, shuffling and dropout.")
    log_every: int = Field(default=1, gt=0, description="Log metrics every N optimizer steps.")
    eval_every: int | None = Field(default=None, gt=0, description="Evaluate every N steps; null = at end only.")
    save_every: int | None = Field(
        default=200, gt=0, description="Checkpoint every N steps (atomic); null = only at the end."
    )
    keep_last: int = Field(default=2, gt=0, description="How many checkpoints to keep.")
    resume: bool = Field(default=True, description="Resume from the newest checkpoint in the output dir.")
    trackers: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=list, description="Extra metric sinks besides metrics.jsonl."
    )
    progress: bool = Field(default=True, description="Show a progress bar.")
    num_workers: int = Field(default=0, ge=0, description="DataLoader worker processes.")
    group_by_length: bool = Field(
        default=False,
        description="Put examples of similar length in the same micro-batch (less padding); micro-batches "
        "still come in a seeded random order, the longest first.",
    )
    keep_final_checkpoint: bool = Field(
        default=False,
        description="Keep a full checkpoint (weights, optimizer, RNG) of the finished run; by default the "
        "run's checkpoints are removed once training finishes, since a finished stage is never resumed.",
    )


class DataConfig(Section):
    path: str = Field(
        description="Dataset file or directory (JSONL, JSON, .jsonl.gz, parquet, HF datasets dir).",
        json_schema_extra={"input": "file"},
    )
    format: str = Field(default="auto", description="Record format name, or auto to detect it.")
    split: str | None = Field(default=None, description="Split to read from a Hugging Face datasets directory.")
    skip_invalid: bool = Field(default=False, description="Skip malformed records (and report the count).")
    limit: int | None = Field(default=None, gt=0, description="Use at most this many records.")
    eval_path: str | None = Field(
        default=None, description="Held-out file for periodic evaluation.", json_schema_extra={"input": "file"}
    )
    eval_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="Hold out this share of the training file when eval_path is unset."
    )
    max_length: int = Field(default=1024, gt=0, description="Truncate tokenized examples to this many tokens.")
    packing: bool = Field(default=False, description="Pack short examples into rows of max_length tokens.")
    only_last_turn: bool = Field(default=False, description="Learn only the final assistant turn.")
    system_prompt: str | None = Field(
        default=None, description="System prompt added to conversations that have none."
    )


# ------------------------------------------------------------------------------------ loading


def format_validation_error(
    err: ValidationError, prefix: str = "", source: str | None = None, cls: type[BaseModel] | None = None
) -> str:
    """One clause per problem: `file: config key 'a.b': message`; unknown keys list the valid ones."""
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        key = ".".join((prefix.split(".") if prefix else []) + loc)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            valid = _valid_keys(cls, loc[:-1]) if cls is not None else []
            msg = "unknown key" + (f"; valid keys here: {', '.join(valid)}" if valid else "; check its spelling")
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif "input" in e and not isinstance(e["input"], (dict, list)):
            msg = f"{msg} (got {e['input']!r})"
        where = f"{source}: " if source else ""
        lines.append(f"{where}config key '{key}': {msg}")
    return "; ".join(lines)


def _valid_keys(cls: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the section at `loc` inside `cls` (empty when it cannot be followed)."""
    node: Any = cls
    for part in loc:
        field = node.model_fields.get(part) if isinstance(node, type) and issubclass(node, BaseModel) else None
        if field is None:
            return []
        node = field.annotation
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def validate_config(cls: type[C], data: Mapping[str, Any], *, prefix: str = "", source: str | None = None) -> C:
    """Build `cls` from plain data, turning validation errors into one clear ConfigError."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, prefix, source, cls)) from None


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found; check the path")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys to values")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """`optim.lr=3e-5` -> (['optim', 'lr'], 3e-05). The value is parsed as YAML (numbers, lists, null)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}': expected key.sub=value")
    key, raw = text.split("=", 1)
    parts = [k for k in key.strip().split(".") if k]
    if not parts:
        raise ConfigError(f"override '{text}': empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        # PyYAML follows YAML 1.1, where "3e-5" (no dot) is a string; users mean a number.
        with contextlib.suppress(ValueError):
            value = float(value) if any(c in value.lower() for c in ".e") else int(value)
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a deep copy of `data` with each dotted override set (intermediate mappings created)."""
    out = _deep_copy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, k in enumerate(parts[:-1]):
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{'.'.join(parts[: i + 1])}' is not a section")
            node = child
        node[parts[-1]] = value
    return out


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `dotted` (e.g. `train.max_steps`) in nested `data`, creating sections on the way."""
    *head, last = dotted.split(".")
    node = data
    for k in head:
        node = node.setdefault(k, {})
    node[last] = value


def _deep_copy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _deep_copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_deep_copy(v) for v in x]
    return x


def load_config(
    cls: type[C], path: str | os.PathLike | None = None, overrides: Sequence[str] = (), base: Mapping | None = None
) -> C:
    """Load `cls` from an optional YAML file, a base mapping, then dotted overrides."""
    data: dict[str, Any] = _deep_copy(dict(base or {}))
    if path is not None:
        data.update(load_yaml(path))
    data = apply_overrides(data, overrides)
    return validate_config(cls, data, source=str(path) if path else None)


def describe_schema(cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, type, description) for every field, recursively; used by docs and `--help`."""
    rows: list[tuple[str, str, str]] = []
    for name, field in cls.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(describe_schema(ann, key + "."))
        else:
            rows.append((key, getattr(ann, "__name__", str(ann)), field.description or ""))
    return rows


# ------------------------------------------------------------------------------- stage configs


class SFTConfig(Section):
    """Instruction tuning: learn the assistant turns of conversations."""

    model: ModelConfig = Field(description="The model to fine-tune.")
    data: DataConfig = Field(description="Training conversations.")
    lora: LoRAConfig = Field(default_factory=LoRAConfig, description="LoRA adapters instead of full fine-tuning.")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="Optimizer.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Learning-rate schedule.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training loop.")


class TextDataConfig(Section):
    path: str = Field(
        description="Text corpus: JSONL/JSON/parquet with a `text` field, or .txt with documents separated by blank lines.",
        json_schema_extra={"input": "file"},
    )
    seq_len: int = Field(default=256, gt=1, description="Tokens per training row (documents are packed).")
    packing: Literal["documents", "stream"] = Field(
        default="documents",
        description="documents: whole documents packed into rows, attention kept inside each. stream: "
        "GPT-style, the eos-separated document stream cut into rows, re-shuffled and re-cut every epoch.",
    )
    eval_fraction: float = Field(default=0.0, ge=0, lt=1, description="Share of documents held out for eval loss.")


class InitConfig(Section):
    """A new model from scratch: a BPE tokenizer trained on the corpus and a randomly initialised LM."""

    arch: Literal["llama", "qwen2", "gpt2"] = Field(default="llama", description="Model architecture.")
    vocab_size: int = Field(default=2048, gt=256, description="BPE vocabulary size (byte alphabet included).")
    hidden_size: int = Field(default=128, gt=0, description="Model width.")
    num_layers: int = Field(default=4, gt=0, description="Transformer blocks.")
    num_heads: int = Field(default=4, gt=0, description="Attention heads.")
    num_kv_heads: int | None = Field(default=None, gt=0, description="Key/value heads (GQA); null = num_heads.")
    intermediate_size: int | None = Field(default=None, gt=0, description="MLP width; null = 4 x hidden_size.")
    max_positions: int = Field(default=512, gt=0, description="Longest sequence the model supports.")
    chat_template: str = Field(
        default="chatml", description="Chat template saved with the tokenizer: chatml, default, or Jinja text."
    )
    seed: int = Field(default=0, description="Seed of the random initialisation.")


class PretrainConfig(Section):
    """Causal language modelling on raw text: from scratch (`init`) or continued (`model`)."""

    data: TextDataConfig = Field(description="The corpus.")
    init: InitConfig | None = Field(default=None, description="Build a new tokenizer + model (from scratch).")
    model: ModelConfig | None = Field(default=None, description="Continue pretraining this model instead.")
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-3), description="Optimizer.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Learning-rate schedule.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training loop.")

    @model_validator(mode="after")
    def _one_source(self) -> PretrainConfig:
        if (self.init is None) == (self.model is None):
            raise ValueError("give exactly one of `init` (from scratch) or `model` (continued pretraining)")
        return self


# ------------------------------------------------------- reward models, scoring, the DPO family


class EnsembleConfig(Section):
    size: int = Field(default=1, gt=0, description="Ensemble members k (1 = a single reward model).")
    kind: Literal["heads", "models"] = Field(
        default="heads", description="k scalar heads on one backbone, or k separate models."
    )
    aggregate: Literal["mean", "min", "mean_minus_std"] = Field(
        default="mean", description="How member rewards combine: mean, min, or mean − std_coef·std."
    )
    std_coef: float = Field(default=1.0, ge=0, description="λ of the mean_minus_std aggregate.")


class RewardLossConfig(Section):
    label_smoothing: float = Field(
        default=0.0, ge=0, lt=0.5, description="Assume each label is flipped with this probability."
    )
    margin_scale: float = Field(
        default=0.0, ge=0, description="Margin = margin_scale × the pair's graded `margin` (0 = no margin)."
    )
    center_coef: float = Field(
        default=0.01, ge=0, description="Weight of the (r_chosen + r_rejected)² reward-centering term."
    )
    use_confidence: bool = Field(
        default=True, description="Use a pair's labeller `confidence` as the target probability."
    )


class RewardModelConfig(Section):
    """Reward model: Bradley-Terry on preference pairs, optionally an ensemble."""

    model: ModelConfig = Field(description="Causal LM backbone (or a reward model to keep training).")
    data: DataConfig = Field(description="Preference pairs; eval_path / eval_fraction give the report's held-out set.")
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig, description="Ensemble of reward members.")
    loss: RewardLossConfig = Field(default_factory=RewardLossConfig, description="Bradley-Terry loss terms.")
    lora: LoRAConfig = Field(default_factory=LoRAConfig, description="LoRA adapters (merged into the saved model).")
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-5), description="Optimizer.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Learning-rate schedule.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training loop.")
    report_bins: int = Field(default=10, gt=0, description="Bins of the calibration reliability table.")


class ScoreConfig(Section):
    """Score (prompt, response) records with a reward model."""

    reward_model: ModelConfig = Field(description="Reward model directory written by the rm stage (or any HF one).")
    data: DataConfig = Field(description="Conversations (last assistant turn scored), preference pairs, or KTO records.")
    batch_size: int = Field(default=16, gt=0, description="Sequences per forward pass.")
    aggregate: Literal["mean", "min", "mean_minus_std"] | None = Field(
        default=None, description="Ensemble aggregate; null = the one the reward model was trained with."
    )
    std_coef: float | None = Field(default=None, ge=0, description="λ of mean_minus_std; null = the model's.")


class ReferenceConfig(Section):
    path: str | None = Field(
        default=None,
        description="Reference model directory; null = the initial policy (for LoRA: the base with adapters off).",
        json_schema_extra={"input": "model"},
    )
    cache: bool = Field(
        default=True,
        description="Compute reference log-probs once before training and cache them in the stage dir; "
        "false keeps a live reference model in memory.",
    )
    batch_size: int = Field(default=8, gt=0, description="Sequences per forward pass of the reference pre-pass.")
    log_kl: bool = Field(
        default=False, description="Also compute reference log-probs for reference-free losses, to log the KL estimate."
    )


class DPOConfig(Section):
    """The DPO family: align a policy directly on preferences with a registered loss."""

    model: ModelConfig = Field(description="The policy to align (usually the SFT model).")
    data: DataConfig = Field(description="Preference pairs (or KTO records for unpaired losses).")
    loss: str = Field(default="dpo", description="Preference loss: dpo, cdpo, ipo, slic, kto, orpo or simpo.")
    loss_params: dict[str, float] = Field(
        default_factory=dict, description="The loss's hyperparameters, e.g. {beta: 0.1}; unset ones keep their defaults."
    )
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig, description="Reference model and its cache.")
    lora: LoRAConfig = Field(default_factory=LoRAConfig, description="LoRA adapters instead of full fine-tuning.")
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-6), description="Optimizer.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Learning-rate schedule.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training loop.")

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        # The registry imports torch, so it is consulted at validation time, never at import time.
        from alignlab.losses.registry import loss_names

        if name not in loss_names():
            raise ValueError(f"unknown preference loss {name!r}; choose one of: {', '.join(loss_names())}")
        return name

    @field_validator("loss_params")
    @classmethod
    def _known_params(cls, params: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        from alignlab.losses.registry import get_loss

        name = info.data.get("loss")
        if name is None:  # the loss name itself failed validation and is reported already
            return params
        # `kl` is KTO's reference point, estimated from each batch, not a setting.
        allowed = [k for k in get_loss(name).hyperparameters if k != "kl"]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(
                f"loss {name!r} has no hyperparameter {', '.join(unknown)}; valid: {', '.join(allowed) or 'none'}"
            )
        return params
