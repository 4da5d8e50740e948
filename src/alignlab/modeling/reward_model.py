"""Reward models: a transformer with k scalar heads, scored at the last real token of each sequence.

A reward model is saved as a plain Hugging Face `AutoModelForSequenceClassification` directory, so
any tool loads it without alignlab: a single model (k = 1), or an ensemble of k heads on one
backbone (`num_labels = k`, one column per member). An ensemble of k separate models is k such
directories `member-0/` ... beside a `reward_model.json` manifest that names them and the
aggregate (mean, min, mean − λ·std; `alignlab.losses.reward.aggregate_ensemble`).

Scoring: for decoder architectures with a `score` head, the backbone runs once and the head is
applied at the last position whose attention mask is 1, so left or right padding and a pad token
equal to eos are both handled. Other architectures (e.g. an encoder reward model from the hub)
use their own forward and pooling.

Inference: `score_examples` gives every member's reward of single sequences, `pair_rewards` of
both sides of encoded preference pairs, in batches, in eval mode.

Not here: the Bradley-Terry loss and report statistics (`alignlab.losses.reward`), training
(`alignlab.training.reward`), the score stage (`alignlab.scoring`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from alignlab.data.collators import pad_batch
from alignlab.data.layout import BatchLayout, lay_out_groups
from alignlab.data.preference import EncodedPair, collate_pairs, count_pairs
from alignlab.data.templating import EncodedExample
from alignlab.errors import ModelLoadError
from alignlab.losses.reward import aggregate_ensemble
from alignlab.modeling.attention import attention_inputs
from alignlab.modeling.inference import run_batches
from alignlab.modeling.loading import (
    ADAPTER_CONFIG,
    check_model_source,
    first_line,
    load_causal_lm,
    quiet_peft_deprecations,
    resolve_device,
    resolve_dtype,
)

Tensor = torch.Tensor
MANIFEST = "reward_model.json"
EnsembleKind = Literal["heads", "models"]


@dataclass(frozen=True)
class RewardManifest:
    """What `reward_model.json` records: how many members, where, and how they combine."""

    kind: EnsembleKind
    num_members: int
    members: tuple[str, ...]  # member directories relative to the model dir; ("",) for one model
    aggregate: str = "mean"
    std_coef: float = 1.0
    max_length: int | None = None  # tokens per sequence it was trained on (None: not recorded)


def last_token_indices(attention_mask: Tensor) -> Tensor:
    """(B,) index of the last position with attention_mask 1 in each row (left or right padding)."""
    length = attention_mask.shape[1]
    return length - 1 - attention_mask.flip(1).to(torch.long).argmax(1)


def _score_parts(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(backbone, score head) of a decoder sequence-classification model (PEFT-wrapped or not)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(inner, getattr(inner, "base_model_prefix", ""), None)
    head = getattr(inner, "score", None)
    if backbone is None or head is None:
        return None
    return backbone, head


def sequence_rewards(model, input_ids: Tensor, attention_mask: Tensor | None,
                     layout: dict[str, Any] | None = None) -> Tensor:
    """(B, num_labels) float32 rewards of a sequence-classification model at each row's last real
    token; with a `layout` batch (`alignlab.data.layout`), (S,) at each sequence's last token."""
    parts = _score_parts(model)
    if parts is None:
        if layout is not None:
            raise ValueError("a laid-out batch needs a decoder with a `score` head")
        return model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    backbone, head = parts
    if layout is not None:
        hidden = backbone(**attention_inputs(model, layout), use_cache=False).last_hidden_state
        pooled = hidden.reshape(-1, hidden.shape[-1]).index_select(0, layout["last_index"])
        return head(pooled).float()
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    # Only the pooled positions go through the head: (B, H), not (B, T, H).
    pooled = hidden[rows, last_token_indices(attention_mask).to(hidden.device)]
    return head(pooled).float()


def can_lay_out(model: RewardModel) -> bool:
    """Whether every member reads rewards from a backbone and a `score` head (laid-out batches)."""
    return all(_score_parts(m) is not None for m in model.members)


def reward_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """`RewardModel` arguments of a pair or sequence batch: padded rows, or a layout."""
    if "last_index" in batch:
        return {"input_ids": batch["input_ids"], "attention_mask": None, "layout": batch}
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


class RewardModel(torch.nn.Module):
    """k reward members: k heads of one model (kind "heads") or k models with one head each."""

    def __init__(self, members: list[torch.nn.Module], kind: EnsembleKind) -> None:
        super().__init__()
        if kind == "heads" and len(members) != 1:
            raise ValueError("a 'heads' reward model holds exactly one model")
        self.kind = kind
        self.members = torch.nn.ModuleList(members)

    @property
    def num_members(self) -> int:
        if self.kind == "heads":
            return int(self.members[0].config.num_labels)
        return len(self.members)

    @property
    def config(self):
        """The first member's config (device / dtype / pad token of the whole ensemble)."""
        return self.members[0].config

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None,
                layout: dict[str, Any] | None = None) -> Tensor:
        """(K, B) float32 reward of every member for every row (every sequence of a `layout`)."""
        if self.kind == "heads":
            return sequence_rewards(self.members[0], input_ids, attention_mask, layout).t()
        return torch.cat([sequence_rewards(m, input_ids, attention_mask, layout).t() for m in self.members])

    @torch.no_grad()
    def reward(
        self, input_ids: Tensor, attention_mask: Tensor | None, aggregate: str = "mean", std_coef: float = 1.0
    ) -> Tensor:
        """(B,) aggregated reward (no gradient); see `aggregate_ensemble`."""
        return aggregate_ensemble(self(input_ids, attention_mask), aggregate, std_coef=std_coef)

    def gradient_checkpointing_enable(self, **kwargs) -> None:
        for m in self.members:
            m.gradient_checkpointing_enable(**kwargs)
            if hasattr(m, "peft_config"):
                # Frozen embeddings would give the first checkpointed block no input requiring grad.
                m.enable_input_require_grads()

    def enable_input_require_grads(self) -> None:
        for m in self.members:
            m.enable_input_require_grads()


# ------------------------------------------------------------------------------------ inference


def _member_rewards(model: RewardModel, batch: dict[str, Any]) -> Tensor:
    return model(**reward_inputs(batch)).float().cpu()


def score_examples(
    model: RewardModel, examples: Sequence[EncodedExample], *, pad_token_id: int, batch_size: int
) -> Tensor:
    """(K, N) reward of every member for every example, batched in order of length."""
    return score_groups(model, [[ex] for ex in examples], pad_token_id=pad_token_id, batch_size=batch_size)


def score_groups(
    model: RewardModel, groups: Sequence[Sequence[EncodedExample]], *, pad_token_id: int, batch_size: int,
    layout: BatchLayout | None = None,
) -> Tensor:
    """(K, N) reward of every member for every sequence of `groups`, in order (N = all sequences).

    A group is the responses of one record after one shared prompt (a pair, or one response); with
    a `layout` a pair's prompt is encoded once and nothing is padded. Batched in order of length.
    """
    starts = [0]
    for g in groups:
        starts.append(starts[-1] + len(g))
    out = torch.zeros(model.num_members, starts[-1])

    def collate(batch: list[Sequence[EncodedExample]]) -> dict[str, Any]:
        if layout is None:
            return pad_batch([ex for g in batch for ex in g], pad_token_id)
        return lay_out_groups(batch, pad_token_id, layout)

    for idx, rewards in run_batches(model, list(groups), collate, _member_rewards, batch_size=batch_size,
                                    length=lambda g: sum(map(len, g))):
        out[:, [j for i in idx for j in range(starts[i], starts[i + 1])]] = rewards
    return out


def pair_rewards(
    model: RewardModel, pairs: Sequence[EncodedPair], *, pad_token_id: int, batch_size: int,
    layout: BatchLayout | None = None,
) -> tuple[Tensor, Tensor]:
    """(K, N) chosen and (K, N) rejected rewards of every member, in the order of `pairs`."""
    chosen, rejected = [], []

    def forward(model: RewardModel, batch: dict[str, Any]) -> tuple[Tensor, int]:
        return _member_rewards(model, batch), count_pairs(batch)

    collate = lambda b: collate_pairs(b, pad_token_id, layout)  # noqa: E731
    for _, (rewards, n) in run_batches(model, pairs, collate, forward, batch_size=batch_size):
        chosen.append(rewards[:, :n])
        rejected.append(rewards[:, n:])
    return torch.cat(chosen, 1), torch.cat(rejected, 1)


# ------------------------------------------------------------------------------------ building


def _seq_cls_from_causal_lm(path: str, num_labels: int, **load) -> torch.nn.Module:
    """A sequence-classification model whose backbone is the (adapter-merged) causal LM at `path`."""
    from transformers import AutoModelForSequenceClassification

    lm = load_causal_lm(path, **load)
    config = lm.config
    config.num_labels = num_labels
    model = AutoModelForSequenceClassification.from_config(config)
    getattr(model, model.base_model_prefix).load_state_dict(getattr(lm, lm.base_model_prefix).state_dict())
    return model.to(device=next(lm.parameters()).device, dtype=next(lm.parameters()).dtype)


def _from_pretrained(
    path: str,
    *,
    dtype: str = "auto",
    device: str = "auto",
    allow_hub: bool = False,
    revision: str | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    **kwargs,
):
    """`AutoModelForSequenceClassification.from_pretrained` with the settings of a model section."""
    from transformers import AutoModelForSequenceClassification

    dev = resolve_device(device)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForSequenceClassification.from_pretrained(
        path, dtype=resolve_dtype(dtype, dev), revision=revision, local_files_only=not allow_hub,
        trust_remote_code=trust_remote_code, **kwargs,
    )
    return model.to(dev)


def _load_seq_cls(path: str, num_labels: int, **load) -> torch.nn.Module:
    local = check_model_source(path, load.get("allow_hub", False))
    if local and Path(path, ADAPTER_CONFIG).exists():
        # A LoRA directory (e.g. an SFT adapter): merge it into its base, then add the head.
        return _seq_cls_from_causal_lm(path, num_labels, **{**load, "revision": None})
    try:
        return _from_pretrained(path, num_labels=num_labels, **load)
    except (OSError, ValueError) as err:
        hint = ""
        if "Unrecognized configuration class" in str(err):
            hint = (
                "; transformers has no sequence-classification head for this architecture: start the "
                "reward model from a checkpoint of one that has (Llama, Qwen2/3, Mistral, Gemma, Phi-3, "
                "OLMo-2, GPT-NeoX, GPT-2, ...)"
            )
        raise ModelLoadError(
            f"{path}: cannot load a reward model backbone ({first_line(err)}){hint}"
        ) from None


def build_reward_model(
    path: str,
    *,
    num_members: int = 1,
    kind: EnsembleKind = "heads",
    pad_token_id: int | None = None,
    seed: int = 0,
    **load,
) -> RewardModel:
    """A new reward model on the backbone at `path` (causal LM dir, LoRA dir, or hub id).

    Heads start random (seeded): member i of a "models" ensemble draws its head with seed + i, so
    members differ even though their backbones start equal. `pad_token_id` is written into each
    config so Hugging Face's own forward (which pools at the last non-pad token) works too. `load`
    are the settings of a model section (`alignlab.modeling.loading.load_options`: dtype, device,
    allow_hub, revision, attn_implementation, trust_remote_code).
    """
    count, labels = (1, num_members) if kind == "heads" else (num_members, 1)
    members = []
    for i in range(count):
        torch.manual_seed(seed + i)
        m = _load_seq_cls(path, labels, **load)
        if pad_token_id is not None:
            m.config.pad_token_id = pad_token_id
        members.append(m)
    return RewardModel(members, kind)


def apply_reward_lora(model: RewardModel, *, r: int, alpha: float, dropout: float,
                      target_modules) -> RewardModel:
    """Wrap each member with LoRA adapters; the score head stays fully trainable (PEFT SEQ_CLS)."""
    from peft import LoraConfig, get_peft_model

    from alignlab.errors import ConfigError

    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                     task_type="SEQ_CLS")
    try:
        with quiet_peft_deprecations():
            members = [get_peft_model(m, cfg) for m in model.members]
    except ValueError as err:
        raise ConfigError(f"config key 'lora.target_modules': {first_line(err)}") from None
    return RewardModel(members, model.kind)


# ------------------------------------------------------------------------------------ save / load


def save_reward_model(
    model: RewardModel, tokenizer, out_dir: str | Path, *, aggregate: str = "mean", std_coef: float = 1.0,
    state_dict: dict[str, Tensor] | None = None, max_length: int | None = None,
) -> RewardManifest:
    """Save in the Hugging Face format (LoRA merged) plus `reward_model.json`; returns the manifest.

    `state_dict` is the whole RewardModel's gathered weights when its own are sharded (FSDP,
    ZeRO-3; see `TrainResult.state_dict`); LoRA members are merged from their own weights, so a
    sharded LoRA reward model is not supported. `max_length` is the length it was trained at, which
    scoring uses unless told otherwise. Call it from one process only.
    """
    from alignlab.io import atomic_write_json
    from alignlab.modeling.saving import save_model_artefacts

    out = Path(out_dir)
    names = ("",) if model.kind == "heads" else tuple(f"member-{i}" for i in range(len(model.members)))
    for i, (name, member) in enumerate(zip(names, model.members, strict=True)):
        weights = _member_state_dict(state_dict, i)
        if hasattr(member, "merge_and_unload"):
            # A merged full model is what every downstream tool (and PPO) loads without peft.
            member, weights = member.merge_and_unload(), None
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        save_model_artefacts(member, tokenizer, target, state_dict=weights)
    if model.kind == "models":
        tokenizer.save_pretrained(out)  # one tokenizer for the whole ensemble, where loaders look
    manifest = RewardManifest(model.kind, model.num_members, names, aggregate, std_coef, max_length)
    atomic_write_json(out / MANIFEST, {**asdict(manifest), "members": list(names)})
    return manifest


def _member_state_dict(state_dict: dict[str, Tensor] | None, index: int) -> dict[str, Tensor] | None:
    """Member `index`'s weights out of the whole RewardModel's state dict (keys `members.<i>.`)."""
    if state_dict is None:
        return None
    prefix = f"members.{index}."
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def read_manifest(path: str | Path) -> RewardManifest:
    """The manifest of a saved reward model; a plain HF sequence-classification dir gets a default one."""
    p = Path(path)
    if not (p / MANIFEST).is_file():
        return RewardManifest("heads", 0, ("",))
    try:
        raw = json.loads((p / MANIFEST).read_text())
        return RewardManifest(
            raw["kind"], int(raw["num_members"]), tuple(raw["members"]),
            raw.get("aggregate", "mean"), float(raw.get("std_coef", 1.0)),
            int(raw["max_length"]) if raw.get("max_length") is not None else None,
        )
    except (ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(
            f"{p / MANIFEST}: malformed reward model manifest ({err}); re-save the model"
        ) from None


def load_reward_model(path: str, **load) -> tuple[RewardModel, RewardManifest]:
    """Load a reward model saved by `save_reward_model` (or any HF sequence-classification model);
    `load` as for `build_reward_model`."""
    local = check_model_source(path, load.get("allow_hub", False))
    manifest = read_manifest(path) if local else RewardManifest("heads", 0, ("",))
    members = []
    for name in manifest.members:
        src = str(Path(path) / name) if name else path
        try:
            members.append(_from_pretrained(src, **load).eval())
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"{src}: cannot load a reward model ({first_line(err)})") from None
    model = RewardModel(members, manifest.kind)
    if manifest.num_members == 0:
        manifest = RewardManifest("heads", model.num_members, ("",))
    return model, manifest
