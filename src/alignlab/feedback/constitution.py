"""Constitutions: the written principles that replace per-example labels (Bai et al. 2022, "Constitutional
AI: Harmlessness from AI Feedback", arXiv:2212.08073).

A principle has an id and up to three texts, each used by one part of the method:

- `critique`: one or more critique requests (SL-CAI: "identify ways the last response is ...");
  when a principle has several, one is drawn each time it is used;
- `revision`: the revision request (SL-CAI: "rewrite the response to ...");
- `comparison`: the question a judge answers about two responses (RL-CAI / RLAIF).

Files (`load_constitution`):

- our YAML (or the same object as JSON): `name`, optional `description`, `principles` (a list of
  `{id, critique, revision, comparison}`), optional `few_shot` (worked critique-and-revision
  examples, see `FewShotExample`);
- the published Constitutional AI prompt files, read unchanged (`alignlab.feedback.published`): the
  critique-and-revision object `{principle id: {"prompt": [critique request, ...], "edit_request":
  revision request}}` and the list of comparison instructions.

`Constitution.content_hash()` is the first 16 hex digits of the sha256 of the canonical JSON of its
content (not of the file), recorded in every artefact made with it. A file that cannot be read
raises `ConfigError` naming the file, the line where YAML gives one, the key and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from alignlab.data.schema import Message
from alignlab.errors import ConfigError

HASH_LEN = 16
DEFAULT_CONSTITUTION = "default.yaml"  # in alignlab/feedback/constitutions/


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text_tuple(v: Any) -> Any:
    """A single string is a one-element tuple (our YAML writes one critique request as a string)."""
    return (v,) if isinstance(v, str) else v


class Principle(_Frozen):
    """One principle; a constitution needs critique + revision for SL-CAI and comparison for RLAIF."""

    id: str = Field(min_length=1, description="Stable id, recorded in every artefact that used it.")
    critique: tuple[str, ...] = Field(default=(), description="Critique requests; one is drawn per use.")
    revision: str | None = Field(default=None, min_length=1, description="Revision request.")
    comparison: str | None = Field(
        default=None, min_length=1, description="Question for comparing two responses."
    )

    @field_validator("critique", mode="before")
    @classmethod
    def _one_request(cls, v: Any) -> Any:
        return _text_tuple(v)

    @field_validator("critique")
    @classmethod
    def _non_empty_requests(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not r.strip() for r in v):
            raise ValueError("a critique request is empty; write the request or remove the entry")
        return v

    @model_validator(mode="after")
    def _usable(self) -> Principle:
        if bool(self.critique) != (self.revision is not None):
            raise ValueError("critique and revision go together: give both (SL-CAI) or neither")
        if not self.critique and self.comparison is None:
            raise ValueError("give critique + revision, a comparison question, or all three")
        return self

    @property
    def can_critique(self) -> bool:
        return bool(self.critique)


class FewShotExample(_Frozen):
    """A worked critique and revision, shown to the critic before its task (Bai et al. 2022, App. E)."""

    prompt: tuple[Message, ...] = Field(min_length=1, description="Conversation before the response.")
    response: str = Field(description="The response that is critiqued.")
    critique_request: str = Field(min_length=1)
    critique: str
    revision_request: str = Field(min_length=1)
    revision: str

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_text(cls, v: Any) -> Any:
        return [{"role": "user", "content": v}] if isinstance(v, str) else v

    def messages(self) -> list[Message]:
        """The example as chat turns: response, critique request, critique, revision request, revision."""
        return [
            *self.prompt,
            Message(role="assistant", content=self.response),
            Message(role="user", content=self.critique_request),
            Message(role="assistant", content=self.critique),
            Message(role="user", content=self.revision_request),
            Message(role="assistant", content=self.revision),
        ]


class Constitution(_Frozen):
    """A named set of principles, optionally with few-shot critique-and-revision examples."""

    name: str = Field(min_length=1)
    description: str = ""
    principles: tuple[Principle, ...] = Field(min_length=1)
    few_shot: tuple[FewShotExample, ...] = ()
    _source: str | None = PrivateAttr(default=None)

    @field_validator("principles")
    @classmethod
    def _unique_ids(cls, v: tuple[Principle, ...]) -> tuple[Principle, ...]:
        seen: set[str] = set()
        for p in v:
            if p.id in seen:
                raise ValueError(f"principle id '{p.id}' appears twice; ids must be unique")
            seen.add(p.id)
        return v

    @property
    def source(self) -> str:
        """The file it was read from (or its name when built in code), for messages."""
        return self._source or f"constitution '{self.name}'"

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the content (sorted keys, no whitespace), first 16 hex digits."""
        text = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LEN]

    def critique_principles(self) -> tuple[Principle, ...]:
        """Principles with critique and revision requests; ConfigError when there are none."""
        out = tuple(p for p in self.principles if p.can_critique)
        if not out:
            raise ConfigError(
                f"{self.source}: no principle has critique and revision requests, so it cannot drive "
                "critique-and-revise; use a constitution with `critique` and `revision` (or the published "
                "critique-revision file)"
            )
        return out

    def comparison_principles(self) -> tuple[Principle, ...]:
        """Principles with a comparison question; ConfigError when there are none."""
        out = tuple(p for p in self.principles if p.comparison is not None)
        if not out:
            raise ConfigError(
                f"{self.source}: no principle has a comparison question, so it cannot label pairs; use a "
                "constitution with `comparison` (or the published list of comparison instructions)"
            )
        return out

    def with_few_shot(self, examples: Sequence[FewShotExample]) -> Constitution:
        """A copy with these few-shot examples (e.g. from `published.load_few_shot`); the hash changes."""
        out = Constitution(name=self.name, description=self.description, principles=self.principles,
                           few_shot=tuple(examples))
        out._source = self._source
        return out

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


# ------------------------------------------------------------------------------------------- loading


def default_constitution() -> Constitution:
    """The constitution shipped with alignlab: helpful, honest, harmless, and the instruction hierarchy."""
    return shipped_constitution(Path(DEFAULT_CONSTITUTION).stem)


def shipped_names() -> list[str]:
    """Names of the constitutions shipped with alignlab (`constitutions/<name>.yaml`)."""
    folder = resources.files("alignlab.feedback").joinpath("constitutions")
    return sorted(f.name.removesuffix(".yaml") for f in folder.iterdir() if f.name.endswith(".yaml"))


def shipped_constitution(name: str) -> Constitution:
    """A constitution shipped with alignlab, by name: `default`, or `lab` (the laboratory's world)."""
    if name not in shipped_names():
        raise ConfigError(
            f"no constitution named '{name}' ships with alignlab; choose {', '.join(shipped_names())}"
        )
    ref = resources.files("alignlab.feedback").joinpath("constitutions", f"{name}.yaml")
    with resources.as_file(ref) as path:
        return load_constitution(path)


def constitution_from_config(value: str, key: str = "constitution") -> Constitution:
    """A stage's `constitution` setting: a shipped name or a file; an unreadable one names the config
    key as well as the file, line and key inside it."""
    if value in shipped_names():
        return shipped_constitution(value)
    try:
        return load_constitution(value)
    except ConfigError as err:
        raise ConfigError(f"config key '{key}': {err}") from None


def load_constitution(path: str | os.PathLike) -> Constitution:
    """Read our YAML/JSON format or a published Constitutional AI prompt file (see the module doc)."""
    from alignlab.feedback import published

    p = Path(path)
    text = read_text_file(p)
    data = parse_document(p, text)
    lines = key_lines(text)
    if isinstance(data, dict) and "principles" in data:
        out = validate_constitution(data, str(p), lines)
    elif isinstance(data, dict):
        out = published.critique_revision_constitution(data, p, lines)
    elif isinstance(data, list):
        out = published.comparison_constitution(data, p, lines)
    else:
        raise ConfigError(
            f"{p}: a constitution is a mapping with `name` and `principles`, a published critique-revision "
            "object or a list of comparison instructions; this file holds neither"
        )
    out._source = str(p)
    return out


def read_text_file(p: Path) -> str:
    if not p.is_file():
        raise ConfigError(f"{p}: constitution file not found; check the path")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{p}: not UTF-8 text ({err.reason}); save the constitution as UTF-8") from None


def parse_document(p: Path, text: str) -> Any:
    if p.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{p}:{err.lineno}: not valid JSON ({err.msg}); fix the file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{p}{line}: not valid YAML ({getattr(err, 'problem', err)}); fix the file"
        ) from None


KeyPath = tuple[str | int, ...]


def key_lines(text: str) -> dict[KeyPath, int]:
    """1-based line of every key and list item of a YAML (or JSON) document; {} if it cannot tell."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    out: dict[KeyPath, int] = {}

    def walk(node: yaml.Node, path: KeyPath) -> None:
        out.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                out[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return out


def key_error(source: str, lines: dict[KeyPath, int], path: KeyPath, problem: str) -> ConfigError:
    """`file:line: key 'a.0.b': problem` (the line of the deepest part of the key the file has)."""
    line = next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)
    where = f"{source}:{line}" if line is not None else source
    key = ".".join(str(k) for k in path) or "(top level)"
    return ConfigError(f"{where}: key '{key}': {problem}")


def validate_constitution(data: dict, source: str, lines: dict[KeyPath, int] | None = None) -> Constitution:
    """Our format from parsed data; the first problem raises ConfigError with file, line and key."""
    try:
        return Constitution.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        path = tuple(k for k in e["loc"] if not (isinstance(k, str) and k.startswith("function-")))
        if e["type"] == "extra_forbidden":
            model = {"principles": Principle, "few_shot": FewShotExample}.get(str(path[0]), Constitution)
            problem = f"unknown key; valid keys here: {', '.join(model.model_fields)}"
        elif e["type"] == "missing":
            problem = "required key is missing; add it"
        else:
            problem = e["msg"].removeprefix("Value error, ") + "; fix the value"
        raise key_error(source, lines or {}, path, problem) from None
