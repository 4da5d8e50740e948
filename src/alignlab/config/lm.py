"""Language-modelling stages: pretraining on raw text, and supervised fine-tuning on conversations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from alignlab.config.core import Section
from alignlab.config.sections import DataConfig, LoRAConfig, ModelConfig, OptimConfig, TrainedStageConfig


class SFTConfig(TrainedStageConfig):
    """Instruction tuning: learn the assistant turns of conversations."""

    model: ModelConfig = Field(description="The model to fine-tune.")
    data: DataConfig = Field(description="Training conversations.")
    lora: LoRAConfig = Field(
        default_factory=LoRAConfig, description="LoRA adapters instead of full fine-tuning."
    )


class TextDataConfig(Section):
    path: str = Field(
        description="Text corpus: JSONL/JSON/parquet with a `text` field, or .txt with documents "
        "separated by blank lines.",
        json_schema_extra={"input": "file"},
    )
    seq_len: int = Field(default=256, gt=1, description="Tokens per training row (documents are packed).")
    packing: Literal["documents", "stream"] = Field(
        default="documents",
        description="documents: whole documents packed into rows, attention kept inside each. stream: "
        "GPT-style, the eos-separated document stream cut into rows, re-shuffled and re-cut every epoch.",
    )
    eval_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="Share of documents held out for eval loss."
    )


class InitConfig(Section):
    """A new model from scratch: a BPE tokenizer trained on the corpus and a randomly initialised LM."""

    arch: Literal["llama", "qwen2", "gpt2"] = Field(default="llama", description="Model architecture.")
    vocab_size: int = Field(
        default=2048, gt=256, description="BPE vocabulary size (byte alphabet included)."
    )
    hidden_size: int = Field(default=128, gt=0, description="Model width.")
    num_layers: int = Field(default=4, gt=0, description="Transformer blocks.")
    num_heads: int = Field(default=4, gt=0, description="Attention heads.")
    num_kv_heads: int | None = Field(
        default=None, gt=0, description="Key/value heads (GQA); null = num_heads."
    )
    intermediate_size: int | None = Field(
        default=None, gt=0, description="MLP width; null = 4 x hidden_size."
    )
    max_positions: int = Field(default=512, gt=0, description="Longest sequence the model supports.")
    chat_template: str = Field(
        default="chatml",
        description="Chat template saved with the tokenizer: chatml, default, or Jinja text."
    )
    seed: int = Field(default=0, description="Seed of the random initialisation.")


# A tiny model from scratch learns at 1e-3; a trained model continued at that rate is wrecked (two
# steps took a 135M chat model's assistant-token NLL from 1.62 to 3.02), so continuing starts from
# a fine-tuning rate unless `optim.lr` is given.
FROM_SCRATCH_LR, CONTINUED_LR = 1e-3, 2e-5


class PretrainConfig(TrainedStageConfig):
    """Causal language modelling on raw text: from scratch (`init`) or continued (`model`)."""

    data: TextDataConfig = Field(description="The corpus.")
    init: InitConfig | None = Field(default=None, description="Build a new tokenizer + model (from scratch).")
    model: ModelConfig | None = Field(default=None, description="Continue pretraining this model instead.")
    optim: OptimConfig = Field(
        default_factory=lambda: OptimConfig(lr=FROM_SCRATCH_LR),
        description=f"Optimizer; lr defaults to {FROM_SCRATCH_LR:g} from scratch and to {CONTINUED_LR:g} (a "
        "fine-tuning rate) when continuing a model.",
    )

    @model_validator(mode="before")
    @classmethod
    def _continued_lr(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("model") is None:
            return data
        optim = data.get("optim")
        if optim is None or (isinstance(optim, dict) and "lr" not in optim):
            return {**data, "optim": {**(optim or {}), "lr": CONTINUED_LR}}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> PretrainConfig:
        if (self.init is None) == (self.model is None):
            raise ValueError("give exactly one of `init` (from scratch) or `model` (continued pretraining)")
        return self
