"""The registry of eval suites, by name: plain data that `--list`, the CLI, the docs and the tests read.

A suite builder is a function `build(data, **options) -> Suite` registered with `@register_suite`;
`data` is the path of the public file it reads (None for suites with a built-in set), the options
are its keyword-only parameters (their defaults are listed by `SuiteSpec.options`). An unknown
suite or option is a `ConfigError` listing the valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from alignlab.errors import ConfigError
from alignlab.evals.core import Mode, Suite

B = TypeVar("B", bound=Callable[..., Suite])


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    build: Callable[..., Suite]
    data: str | None  # the file the suite reads (format and columns); None: a built-in set only
    data_required: bool  # False: `data` is optional (a built-in default set is used without it)
    mode: Mode  # "loglikelihood" suites need an in-process model
    # The figures that sum the suite up (stage summaries, terminal tables): (variant, metric) pairs;
    # variant "*" is every variant, "aggregate" a suite-level aggregate.
    headline: tuple[tuple[str, str], ...] = ()

    @property
    def help(self) -> str:
        """First line of the builder's docstring."""
        doc = (self.build.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @property
    def options(self) -> dict[str, Any]:
        """Keyword-only options of the builder and their defaults (`REQUIRED` when it has none)."""
        params = inspect.signature(self.build).parameters.values()
        return {p.name: REQUIRED if p.default is p.empty else p.default
                for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}  # fmt: skip


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()  # the default shown for an option a suite cannot do without
_SUITES: dict[str, SuiteSpec] = {}


def register_suite(
    name: str,
    *,
    data: str | None = None,
    data_required: bool = True,
    mode: Mode = "generate",
    headline: tuple[tuple[str, str], ...] = (),
) -> Callable[[B], B]:
    """Decorator recording a suite builder under `name`; returns the builder unchanged."""

    def decorator(fn: B) -> B:
        if name in _SUITES:
            raise ValueError(f"eval suite {name!r} is registered twice")
        _SUITES[name] = SuiteSpec(name, fn, data, data_required and data is not None, mode, headline)
        return fn

    return decorator


def _ensure_builtin_suites() -> None:
    import alignlab.evals.suites  # noqa: F401  (registers every built-in suite)


def suite_names() -> tuple[str, ...]:
    _ensure_builtin_suites()
    return tuple(_SUITES)


def get_suite_spec(name: str) -> SuiteSpec:
    """The spec registered under `name`; unknown -> ConfigError listing the valid names."""
    _ensure_builtin_suites()
    try:
        return _SUITES[name]
    except KeyError:
        raise ConfigError(f"unknown eval suite '{name}'; valid suites: {', '.join(_SUITES)}") from None


def build_suite(name: str, data: str | None = None, *, limit: int | None = None, **options: Any) -> Suite:
    """Build the suite registered as `name` from its data file and options (at most `limit` samples)."""
    spec = get_suite_spec(name)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        valid = ", ".join(spec.options) or "none"
        raise ConfigError(f"eval suite '{name}' has no option '{unknown[0]}'; its options: {valid}")
    missing = [k for k, v in spec.options.items() if v is REQUIRED and options.get(k) is None]
    if missing:
        raise ConfigError(
            f"eval suite '{name}' needs the option '{missing[0]}' (e.g. --{missing[0].replace('_', '-')})"
        )
    if spec.data_required and data is None:
        raise ConfigError(f"eval suite '{name}' needs a data file (--data FILE): {spec.data}")
    if spec.data is None and data is not None:
        raise ConfigError(f"eval suite '{name}' uses its built-in set and reads no data file; drop --data")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be a positive number of samples, got {limit}")
    return spec.build(data, **options).limited(limit)


def describe_suites() -> list[dict[str, Any]]:
    """One row per suite (name, help, data, mode, options) for `alignlab eval --list` and the docs."""
    return [
        {"name": s.name, "help": s.help, "data": s.data or "built in", "mode": s.mode,
         "options": {k: repr(v) for k, v in s.options.items()}}
        for s in (get_suite_spec(n) for n in suite_names())
    ]  # fmt: skip
