"""The per-concern sections stage configs are made of, and the base of every trained stage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from alignlab.config.core import Registered, Section

# The readers' format names, read when a value is checked or described.
DATA_FORMATS = Registered("alignlab.data.formats:format_choices", "data format")
# torch.compile's modes (inductor), the names train.compile takes besides true and false.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class ModelConfig(Section):
    """A model to load; a bare string is its path (`policy: "${sft}"`)."""

    path: str = Field(
        description="Local Hugging Face model directory, or a hub id when allow_hub is true.",
        json_schema_extra={"input": "model"},
    )
    allow_hub: bool = Field(
        default=False,
        description="Allow downloading `path` from the Hugging Face hub when it is no local dir."
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

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


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
    eval_every: int | None = Field(
        default=None, gt=0, description="Evaluate every N steps; null = at end only."
    )
    save_every: int | None = Field(
        default=200, gt=0,
        description="Checkpoint every N steps (atomic); null = no checkpoints during the run."
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
    padding_free: bool = Field(
        default=True,
        description="Lay a micro-batch's sequences end to end in one row (positions restart, attention "
        "stays inside each sequence) instead of padding them to the longest; used where the model passes "
        "the attention probe (see packed_attention), else padded batches.",
    )
    prefix_sharing: bool = Field(
        default=True,
        description="Preference pairs: encode each pair's prompt once (one run of prompt, chosen and "
        "rejected tokens; the rejected ones never see the chosen ones), so a pair costs P + C + R tokens "
        "instead of 2P + C + R; used where the model passes the attention probe.",
    )
    packed_attention: Literal["auto", "segments", "mask", "flex"] = Field(
        default="auto",
        description="Attention for padding-free and prefix-shared batches: segments (each sequence's "
        "attention on its own; the CPU default), mask (a dense 4-D mask through the model's own "
        "attention), flex (FlexAttention block masks; needs model.attn_implementation=flex_attention and "
        "a GPU to train); auto probes the model and picks the first that works.",
    )
    compile: bool | str = Field(
        default=False,
        description="torch.compile the model's transformer blocks for training (true, or an inductor mode "
        "name); off by default: on CPU it did not pay (docs/batches.md).",
    )
    compile_backend: str = Field(
        default="inductor",
        description="torch.compile backend when train.compile is on (inductor, aot_eager, ...)."
    )
    keep_final_checkpoint: bool = Field(
        default=False,
        description="Keep a full checkpoint (weights, optimizer, RNG) of the finished run; by default the "
        "run's checkpoints are removed once training finishes, since a finished stage is never resumed.",
    )


    @field_validator("compile", mode="before")
    @classmethod
    def _compile_mode(cls, value: Any) -> Any:
        if isinstance(value, bool) or value in COMPILE_MODES:
            return value
        raise ValueError(f"expected true, false or an inductor mode ({', '.join(COMPILE_MODES)})")


class DataConfig(Section):
    path: str = Field(
        description="Dataset file or directory (JSONL, JSON, .jsonl.gz, parquet, HF datasets dir).",
        json_schema_extra={"input": "file"},
    )
    format: Annotated[str, DATA_FORMATS] = Field(
        default="auto", description="Record format (`alignlab.data.formats`), or auto to detect it."
    )
    split: str | None = Field(
        default=None, description="Split to read from a Hugging Face datasets directory."
    )
    skip_invalid: bool = Field(default=False, description="Skip malformed records (and report the count).")
    limit: int | None = Field(default=None, gt=0, description="Use at most this many records.")
    eval_path: str | None = Field(
        default=None, description="Held-out file for periodic evaluation.",
        json_schema_extra={"input": "file"}
    )
    eval_fraction: float = Field(
        default=0.0, ge=0, lt=1,
        description="Hold out this share of the training file when eval_path is unset."
    )
    max_length: int = Field(
        default=1024, gt=0, description="Truncate tokenized examples to this many tokens."
    )
    max_prompt_length: int | None = Field(
        default=None, gt=0,
        description="Preference and feedback data: keep at most this many prompt tokens (the prompt's end; "
        "one cut for every response of a record) and cut responses longer than the rest of max_length at "
        "their end; null = the prompt gives way to the longer response and a record with no prompt left "
        "is dropped.",
    )
    packing: bool = Field(default=False, description="Pack short examples into rows of max_length tokens.")
    only_last_turn: bool = Field(default=False, description="Learn only the final assistant turn.")
    system_prompt: str | None = Field(
        default=None, description="System prompt added to conversations that have none."
    )


    @model_validator(mode="after")
    def _prompt_fits(self) -> DataConfig:
        if self.max_prompt_length is not None and self.max_prompt_length >= self.max_length:
            raise ValueError(f"max_prompt_length ({self.max_prompt_length}) must be smaller than max_length "
                             f"({self.max_length}), which also holds the responses")
        return self


class TrainedStageConfig(Section):
    """What every stage that runs the training loop configures the same way.

    A trained stage adds its model, data and method settings; it may give `optim` another default
    learning rate."""

    optim: OptimConfig = Field(default_factory=OptimConfig, description="Optimizer.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Learning-rate schedule.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training loop.")
