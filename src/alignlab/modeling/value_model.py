"""PPO's value model: a separate critic that predicts, at every response token, the return to come.

The critic is an ordinary Hugging Face `AutoModelForTokenClassification` with one label (a
transformer with a scalar head on every position), so `save_pretrained` writes a directory any
tool loads. It starts from the policy's backbone with a zero head (every value 0 at first), or
from a reward model's backbone and the mean of its score heads (InstructGPT initialises the value
function from the reward model, sec. 3.5), or from any model directory. Its classifier dropout is
off: dropout noise on the value estimates only slows the critic down.

Values are aligned with the response tokens like the policy's logits (`modeling.responses`): the
value at column start − 1 + t is V(s_t), the state before response token t is chosen.
Not here: the value loss (`losses.policy.clipped_value_loss`), GAE (`losses.advantages`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from alignlab.errors import ModelLoadError
from alignlab.modeling.loading import first_line, load_causal_lm

Tensor = torch.Tensor


def _head(model) -> torch.nn.Linear:
    """The token-classification head (`score` in most architectures, `classifier` in GPT-2)."""
    head = getattr(model, "score", None) or getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear):
        raise ModelLoadError(f"{type(model).__name__}: no linear token-classification head found")
    return head


def _critic_like(backbone_owner, config) -> torch.nn.Module:
    """A one-label token-classification model of `config` holding `backbone_owner`'s backbone."""
    from transformers import AutoModelForTokenClassification

    config.num_labels = 1
    config.classifier_dropout = 0.0
    try:
        critic = AutoModelForTokenClassification.from_config(config)
    except ValueError as err:
        raise ModelLoadError(
            f"{config.model_type}: transformers has no token-classification model for this architecture, "
            f"so it cannot be a PPO critic ({first_line(err)})"
        ) from None
    source = getattr(backbone_owner, backbone_owner.base_model_prefix)
    getattr(critic, critic.base_model_prefix).load_state_dict(source.state_dict())
    param = next(source.parameters())
    return critic.to(device=param.device, dtype=param.dtype)


def critic_from_policy(path: str, **load) -> torch.nn.Module:
    """A critic on the backbone of the causal LM at `path` (an adapter directory is merged), zero head."""
    lm = load_causal_lm(path, **load)
    critic = _critic_like(lm, lm.config)
    with torch.no_grad():
        head = _head(critic)
        head.weight.zero_()
        if head.bias is not None:
            head.bias.zero_()
    return critic


def critic_from_reward_model(path: str, **load) -> torch.nn.Module:
    """A critic on the backbone of the (first member of the) reward model at `path`; its head is the
    mean of the reward model's score heads, so the first values are the reward model's scores."""
    from alignlab.modeling.reward_model import load_reward_model

    rm, _ = load_reward_model(path, **load)
    member = rm.members[0]
    critic = _critic_like(member, member.config)
    with torch.no_grad():
        source, head = _head(member), _head(critic)
        head.weight.copy_(source.weight.mean(0, keepdim=True))
        if head.bias is not None:
            head.bias.copy_(source.bias.mean(0, keepdim=True) if source.bias is not None else 0.0)
    return critic


def load_critic(path: str, **load) -> torch.nn.Module:
    """A saved critic (a one-label token-classification directory), e.g. to continue PPO."""
    from transformers import AutoModelForTokenClassification

    from alignlab.modeling.loading import resolve_device, resolve_dtype

    device = resolve_device(load.get("device", "auto"))
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            path, dtype=resolve_dtype(load.get("dtype", "auto"), device), local_files_only=True,
            classifier_dropout=0.0,
        )
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: cannot load a value model ({first_line(err)})") from None
    if model.config.num_labels != 1:
        raise ModelLoadError(f"{path}: a value model has one label, this one has {model.config.num_labels}")
    return model.to(device)


def is_critic_dir(path: str) -> bool:
    """Whether `path` holds a saved one-label token-classification model (a critic)."""
    import json

    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    archs = json.loads(config.read_text()).get("architectures") or []
    return any(a.endswith("ForTokenClassification") for a in archs)


def token_values(critic, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor,
                 start: int) -> Tensor:
    """(B, T − start) float32 values V(s_t) of the response tokens, aligned like `response_logits`."""
    out = critic(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                 use_cache=False)
    return out.logits[:, start - 1 : -1, 0].float()
