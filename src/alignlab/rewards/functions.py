"""Rule rewards: a Python function named as `path/to/file.py:fn` or `package.module:fn`.

The function is called once per rollout batch as

    fn(prompts, completions, **fields) -> list[float]

with `prompts` the last user turn of each row's prompt, `completions` the decoded replies, and as
keyword arguments `completion_ids` (the generated token ids) and every other field of the prompt
records (one list per field, None where a record lacks it). A function that takes `**kwargs` gets
them all; otherwise only the ones it names. For example, a reward for mentioning a river:

    def mentions_river(prompts, completions, **fields):
        return [1.0 if "river" in c.lower() else 0.0 for c in completions]
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alignlab.errors import ConfigError
from alignlab.rewards.base import RewardInputs

RESERVED = ("prompts", "completions", "completion_ids")


def load_function(spec: str) -> Callable[..., Any]:
    """The callable `spec` names (`file.py:fn` or `module:fn`); `ConfigError` when it cannot be found."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ConfigError(f"reward function '{spec}': expected path/to/file.py:function or module:function")
    if where.endswith(".py") or Path(where).is_file():
        module = _load_file(spec, Path(where).expanduser())
    else:
        try:
            module = importlib.import_module(where)
        except Exception as err:  # an import error or an error raised while importing
            raise ConfigError(f"reward function '{spec}': cannot import module '{where}' "
                              f"({type(err).__name__}: {_first(err)})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        found = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise ConfigError(f"reward function '{spec}': '{name}' is not a function of {where}; its functions: "
                          f"{', '.join(found) or 'none'}")
    return fn


def _load_file(spec: str, path: Path):
    if not path.is_file():
        raise ConfigError(f"reward function '{spec}': file {path} not found; give path/to/file.py:function")
    # A private module name per file, so two reward files may share a base name.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"alignlab_reward_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        raise ConfigError(f"reward function '{spec}': importing {path} raised {type(err).__name__}: "
                          f"{_first(err)}") from None
    sys.modules[name] = module
    return module


def _first(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


class FunctionReward:
    """A rule reward: `fn(prompts, completions, **fields)` (see the module docstring)."""

    def __init__(self, spec: str, name: str | None = None) -> None:
        self.spec = spec
        self.fn = load_function(spec)
        self.name = name or spec.rpartition(":")[2]
        params = inspect.signature(self.fn).parameters.values()
        self._all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        self._named = {p.name for p in params if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                             inspect.Parameter.POSITIONAL_OR_KEYWORD)}

    def __call__(self, inputs: RewardInputs) -> Sequence[float]:
        keys = sorted({k for p in inputs.prompts for k in p.fields if k not in RESERVED})
        fields = {k: [p.fields.get(k) for p in inputs.prompts] for k in keys}
        fields["completion_ids"] = [list(ids) for ids in inputs.completion_ids]
        if not self._all:
            fields = {k: v for k, v in fields.items() if k in self._named}
        return self.fn([p.text for p in inputs.prompts], list(inputs.completions), **fields)
