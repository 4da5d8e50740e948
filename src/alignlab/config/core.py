"""What every config shares: the `Section` base, YAML loading, dotted overrides, clear errors.

Every field is described once (`Field(description=...)`); unknown keys, wrong types and bad values
raise `ConfigError` naming the dotted key. Configs are frozen after load: a stage never mutates
its config mid-run. Builders turn configs into plain arguments; classes never take a whole config.
A field whose values are the names of a registry (losses, ...) says so with `Registered`: the
registry is read when a value is checked or a description is shown, so it stays the one source.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import core_schema

from alignlab.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are frozen after load."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


@dataclass(frozen=True)
class Registered:
    """`Annotated` metadata of a field whose value must be a name in a registry.

    `source` is "module:function" returning the registered names; it is imported only when a value
    is validated or a description is shown, so a config module never imports torch, and a name
    registered later (a plugin, a test) is valid and listed at once.
    """

    source: str
    what: str  # e.g. "preference loss", for the error message

    def names(self) -> tuple[str, ...]:
        module, func = self.source.split(":")
        return tuple(getattr(importlib.import_module(module), func)())

    def check(self, value: str | None) -> str | None:
        if value is None:  # an optional field left unset: its default applies
            return value
        names = self.names()
        if value not in names:
            raise ValueError(f"unknown {self.what} {value!r}; choose one of: {', '.join(names)}")
        return value

    def __get_pydantic_core_schema__(self, source_type: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source_type))


# ------------------------------------------------------------------------------------ errors


def format_validation_error(
    err: ValidationError, prefix: str = "", source: str | None = None, cls: type[BaseModel] | None = None
) -> str:
    """One clause per problem: `file: config key 'a.b': message`; unknown keys list the valid ones."""
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        key = ".".join((prefix.split(".") if prefix else []) + loc)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            valid = _valid_keys(cls, loc[:-1]) if cls is not None else []
            msg = "unknown key" + (
                f"; valid keys here: {', '.join(valid)}" if valid else "; check its spelling"
            )
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif "input" in e and not isinstance(e["input"], (dict, list)):
            msg = f"{msg} (got {e['input']!r})"
        where = f"{source}: " if source else ""
        # A check across keys (a model validator) has no single key to name: its message names them.
        lines.append(f"{where}config key '{key}': {msg}" if key else f"{where}config: {msg}")
    return "; ".join(lines)


def _valid_keys(cls: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the section at `loc` inside `cls` (empty when it cannot be followed)."""
    node: Any = cls
    for part in loc:
        if part.isdigit():  # an item of a list of sections
            continue
        field = node.model_fields.get(part) if _is_model(node) else None
        if field is None:
            return []
        node = section_type(field.annotation) or field.annotation
    return list(node.model_fields) if _is_model(node) else []


def validate_config(cls: type[C], data: Mapping[str, Any], *, prefix: str = "",
                    source: str | None = None) -> C:
    """Build `cls` from plain data, turning validation errors into one clear ConfigError."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, prefix, source, cls)) from None


# ------------------------------------------------------------------------------------ loading


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
    """Set `dotted` (e.g. `train.max_steps`) in nested `data`, creating sections on the way.

    A mapping value is merged into the section already there (so `init={}` only makes sure the
    section exists)."""
    *head, last = dotted.split(".")
    node = data
    for k in head:
        node = node.setdefault(k, {})
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        node[last].update(value)
    else:
        node[last] = value


def _deep_copy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _deep_copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_deep_copy(v) for v in x]
    return x


def load_config(
    cls: type[C], path: str | os.PathLike | None = None, overrides: Sequence[str] = (),
    base: Mapping | None = None
) -> C:
    """Load `cls` from an optional YAML file, a base mapping, then dotted overrides."""
    data: dict[str, Any] = _deep_copy(dict(base or {}))
    if path is not None:
        data.update(load_yaml(path))
    data = apply_overrides(data, overrides)
    return validate_config(cls, data, source=str(path) if path else None)


# ------------------------------------------------------------------------------------ describing


def _is_model(x: Any) -> bool:
    return isinstance(x, type) and issubclass(x, BaseModel)


def section_type(annotation: Any) -> type[BaseModel] | None:
    """The section class inside `annotation`: `S`, `S | None`, `list[S]` or `dict[str, S]`."""
    if _is_model(annotation):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType, list, tuple, dict):
        for arg in get_args(annotation):
            found = section_type(arg)
            if found is not None:
                return found
    return None


def describe_field(field: Any) -> str:
    """A field's description, with the registered names when its values come from a registry."""
    text = field.description or ""
    for meta in field.metadata:
        if isinstance(meta, Registered):
            text = f"{text.rstrip('.')}: one of {', '.join(meta.names())}."
    return text


def describe_schema(cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, type, description) for every field, recursively; read by the docs and `--help`.

    The sections of a list or mapping are described under `key.*`; a section itself is a row too,
    so a list of sections has a description of its own."""
    rows: list[tuple[str, str, str]] = []
    for name, field in cls.model_fields.items():
        key = f"{prefix}{name}"
        inner = section_type(field.annotation)
        if inner is field.annotation:
            rows.extend(describe_schema(inner, key + "."))
            continue
        rows.append((key, _type_name(field.annotation), describe_field(field)))
        if inner is not None:
            many = get_origin(field.annotation) in (list, tuple, dict)
            rows.extend(describe_schema(inner, key + (".*." if many else ".")))
    return rows


def describe_key(cls: type[BaseModel], dotted: str) -> str:
    """The description of the field at `dotted` (e.g. `train.max_steps`) inside `cls`."""
    node: Any = cls
    field = None
    for part in dotted.split("."):
        field = node.model_fields[part]
        node = section_type(field.annotation)
    return describe_field(field)


_NO_DEFAULT = object()


def key_default(cls: type[BaseModel], dotted: str) -> Any:
    """The value `dotted` (e.g. `train.epochs`) takes in `cls` when nobody sets it, following
    sections' own defaults (a stage may give `optim` another lr); `_NO_DEFAULT` for a required key."""
    node: Any = cls
    value: Any = _NO_DEFAULT
    for part in dotted.split("."):
        if isinstance(value, BaseModel):  # inside a section's default instance
            value = getattr(value, part)
            continue
        field = node.model_fields[part]
        if field.default_factory is not None:
            value = field.default_factory()
        else:  # a required section (`data`) still has defaults inside
            value = _NO_DEFAULT if field.is_required() else field.default
        node = section_type(field.annotation)
    return value


def describe_default(cls: type[BaseModel], dotted: str) -> str | None:
    """`none`, `1.0`, `auto` ...: the default of `dotted` as help shows it; None for a required key."""
    value = key_default(cls, dotted)
    if value is _NO_DEFAULT or isinstance(value, BaseModel):
        return None
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is None and hasattr(annotation, "__name__"):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("alignlab.", "")
