"""The loss registry: every preference (DPO-family) loss, by name, with what it takes as data.

The registry is data: `DPOConfig.loss` takes its allowed values and its description from
`loss_names()`, `alignlab losses` and `alignlab dpo --help` list each `LossSpec`, and tests
parametrise over it. A step function asks the spec what to feed the loss instead of branching on
the name. The calling convention is positional:
`fn(policy_chosen, policy_rejected, [ref_chosen, ref_rejected,] [chosen_nll,] **hyperparameters)`,
the reference pair when `needs_reference`, the NLL term when `needs_nll` (summed or per-token as
`nll` says); log-probs summed or length-averaged as `logps` says. `inputs` is the data's shape:
"paired" (chosen and rejected answers to one prompt) or "unpaired" (labelled completions, KTO:
chosen = desirable, rejected = undesirable, of different counts). Keyword arguments named in
`estimated` are computed by the step from each batch (KTO's reference point `kl`), never set.
Each hyperparameter declares its allowed values (`ranges`, `alignlab.losses.params.Range`), which
`DPOConfig.loss_params` is checked against.

Adding a loss = one decorated function in `losses/preference.py` + one test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from alignlab.errors import ConfigError
from alignlab.losses.params import Range, check_ranges, check_values, first_doc_line

LogpsKind = Literal["sum", "mean"]
InputShape = Literal["paired", "unpaired"]
INPUT_SHAPES: tuple[str, ...] = ("paired", "unpaired")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class LossSpec:
    """What a preference loss needs from the step function that calls it."""

    name: str
    fn: Callable[..., Any]
    inputs: InputShape  # "paired": chosen/rejected of one prompt; "unpaired": labelled completions
    needs_reference: bool  # takes reference-model log-probs (cached or live)
    logps: LogpsKind  # "sum": summed token log-probs; "mean": averaged over the response tokens
    needs_nll: bool  # takes a per-example NLL term of the chosen response
    nll: LogpsKind = "sum"  # that NLL summed over the response tokens or averaged per token
    estimated: tuple[str, ...] = ()  # keyword arguments the step computes from each batch
    ranges: Mapping[str, Range] = field(default_factory=dict)  # allowed values per hyperparameter

    @property
    def paired(self) -> bool:
        return self.inputs == "paired"

    @property
    def description(self) -> str:
        """First line of the loss function's docstring (for CLI help and the docs table)."""
        return first_doc_line(self.fn)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Keyword-only scalar arguments and their defaults that a config may set (not the estimated ones)."""
        return {k: v for k, v in _keyword_only(self.fn).items() if k not in self.estimated}

    def check_params(self, values: Mapping[str, Any]) -> None:
        """Raise ValueError when a value is no hyperparameter of the loss or out of its range."""
        for key in sorted(values):
            if key in self.estimated:
                raise ValueError(f"loss {self.name!r} has no hyperparameter {key} (it is estimated from "
                                 f"each batch); valid: {', '.join(self.hyperparameters) or 'none'}")
        check_values(f"loss {self.name!r}", self.ranges, self.hyperparameters, values)


def _keyword_only(fn: Callable[..., Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


_LOSSES: dict[str, LossSpec] = {}


def register_loss(
    name: str,
    *,
    needs_reference: bool,
    inputs: InputShape = "paired",
    logps: LogpsKind = "sum",
    needs_nll: bool = False,
    nll: LogpsKind = "sum",
    estimated: tuple[str, ...] = (),
    ranges: Mapping[str, Range] | None = None,
) -> Callable[[F], F]:
    """Decorator that records a loss function under `name` (verl-style); returns it unchanged.

    `ranges` gives each hyperparameter's allowed values, e.g. `{"beta": Range(gt=0)}`."""

    def decorator(fn: F) -> F:
        # Programming errors, caught when the module defining the loss is imported.
        if name in _LOSSES:
            raise ValueError(f"preference loss {name!r} is registered twice")
        if inputs not in INPUT_SHAPES:
            raise ValueError(
                f"preference loss {name!r}: inputs must be one of {INPUT_SHAPES}, got {inputs!r}"
            )
        missing = [k for k in estimated if k not in _keyword_only(fn)]
        if missing:
            raise ValueError(f"preference loss {name!r}: estimated {missing} are not keyword-only arguments")
        spec = LossSpec(name, fn, inputs, needs_reference, logps, needs_nll, nll, tuple(estimated),
                        dict(ranges or {}))
        check_ranges(f"preference loss {name!r}", spec.ranges, spec.hyperparameters)
        _LOSSES[name] = spec
        return fn

    return decorator


def _ensure_builtin_losses() -> None:
    # Imported here, not at module top, because preference.py imports this module to register.
    import alignlab.losses.preference  # noqa: F401


def unregister_loss(name: str) -> None:
    """Remove `name` from the registry (for tests that register a loss of their own)."""
    _LOSSES.pop(name, None)


def loss_names() -> tuple[str, ...]:
    """Registered loss names, in registration order (`alignlab losses` lists them)."""
    _ensure_builtin_losses()
    return tuple(_LOSSES)


def get_loss(name: str) -> LossSpec:
    """The spec registered under `name`; an unknown name raises `ConfigError` listing valid ones."""
    _ensure_builtin_losses()
    try:
        return _LOSSES[name]
    except KeyError:
        raise ConfigError(
            f"unknown preference loss {name!r} (config key `loss`, CLI `--loss`); "
            f"choose one of: {', '.join(_LOSSES)}"
        ) from None
