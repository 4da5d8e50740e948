"""Registry of preference (DPO-family) losses, by name.

The registry is data: configs take their allowed values from `loss_names()`, the CLI help and the
docs table read each `LossSpec`, and tests parametrise over it. A step function asks the spec what
to feed the loss instead of branching on the name. The calling convention is positional:
`fn(policy_chosen, policy_rejected, [ref_chosen, ref_rejected,] [chosen_nll,] **hyperparameters)`,
the reference pair when `needs_reference`, the NLL term when `needs_nll` (summed or per-token as
`nll` says); log-probs summed or length-averaged as `logps` says; chosen/rejected of different lengths when not `paired` (KTO).

Adding a loss = one decorated function in `losses/preference.py` + one test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from alignlab.errors import ConfigError

LogpsKind = Literal["sum", "mean"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class LossSpec:
    """What a preference loss needs from the step function that calls it."""

    name: str
    fn: Callable[..., Any]
    needs_reference: bool  # takes reference-model log-probs (cached or live)
    paired: bool  # chosen/rejected of the same prompt (False: unpaired desirable/undesirable, KTO)
    logps: LogpsKind  # "sum": summed token log-probs; "mean": averaged over the response tokens
    needs_nll: bool  # takes a per-example NLL term of the chosen response
    nll: LogpsKind = "sum"  # that NLL summed over the response tokens or averaged per token

    @property
    def description(self) -> str:
        """First line of the loss function's docstring (for CLI help and the docs table)."""
        doc = (self.fn.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Keyword-only scalar arguments and their defaults (what a config may set)."""
        params = inspect.signature(self.fn).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


_LOSSES: dict[str, LossSpec] = {}


def register_loss(
    name: str,
    *,
    needs_reference: bool,
    paired: bool = True,
    logps: LogpsKind = "sum",
    needs_nll: bool = False,
    nll: LogpsKind = "sum",
) -> Callable[[F], F]:
    """Decorator that records a loss function under `name` (verl-style); returns it unchanged."""

    def decorator(fn: F) -> F:
        if name in _LOSSES:
            # Two functions under one name would make configs ambiguous: a programming error.
            raise ValueError(f"preference loss {name!r} is registered twice")
        _LOSSES[name] = LossSpec(name, fn, needs_reference, paired, logps, needs_nll, nll)
        return fn

    return decorator


def _ensure_builtin_losses() -> None:
    # Imported here, not at module top, because preference.py imports this module to register.
    import alignlab.losses.preference  # noqa: F401


def loss_names() -> tuple[str, ...]:
    """Registered loss names, in registration order (dpo, cdpo, rpo, ipo, slic, kto, orpo, simpo)."""
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
