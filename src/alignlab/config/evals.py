"""The eval stage: registered suites run on one or more checkpoints, endpoints or response files.

A model to evaluate is a local model directory (run in process), the URL of an OpenAI-compatible
endpoint, or a CSV / JSONL file of existing responses. Suites are names of the suite registry
(`alignlab eval --list`); each may name its data file, a limit and its options, and the stage-wide
`data`, `limit` and `options` apply to every suite that takes them. The judge, the win-rate
baseline and the GCG transfer target are models of the same three kinds; the suites receive them
as their `judge`, `baseline` and `transfer` options.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_core import core_schema

from alignlab.config.core import Registered, Section
from alignlab.config.sections import ModelConfig

# Suite options the stage fills itself: from the config keys of the same name, or (white_box) with
# the in-process model under evaluation, for attacks that need its gradients.
MODEL_OPTIONS = ("judge", "baseline", "transfer")
WHITE_BOX = "white_box"
RUNTIME_OPTIONS = (*MODEL_OPTIONS, WHITE_BOX)
Source = Literal["model", "endpoint", "responses"]
RESPONSE_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".gz")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_STAGE_DIR = re.compile(r"^(?P<name>.+)-[0-9a-f]{10}$")  # a recipe's stage directory <name>-<hash>


class RegisteredKeys(Registered):
    """`Annotated` metadata of a mapping whose keys must be names in a registry."""

    def __get_pydantic_core_schema__(self, source_type: Any, handler: Any) -> core_schema.CoreSchema:
        def check(value: dict) -> dict:
            for key in value:
                self.check(key)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source_type))


SUITE_NAMES = RegisteredKeys("alignlab.evals.registry:suite_names", "eval suite")


def is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


class EndpointConfig(Section):
    """How to reach an OpenAI-compatible endpoint (used when a model's path is a URL)."""

    model: str | None = Field(
        default=None,
        description="Model name sent with each request; null = the one model the endpoint lists at /models.",
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="Environment variable holding the API key (unset: no key sent)."
    )
    api_key: SecretStr | None = Field(
        default=None, description="The API key itself; prefer api_key_env (config.yaml shows it as stars)."
    )
    concurrency: int = Field(default=8, gt=0, description="Requests in flight at once.")
    timeout: float = Field(default=120.0, gt=0, description="Seconds to wait for one response.")
    max_retries: int = Field(
        default=4, ge=0, description="Retries of a request after a connection error, a timeout, 429 or 5xx."
    )
    cache: bool = Field(
        default=True, description="Keep every response in the stage directory, so a re-run sends nothing."
    )


class EvalModelConfig(ModelConfig):
    """A model to evaluate; a bare string is its path."""

    path: str = Field(
        description="A model directory (run in process), the URL of an OpenAI-compatible endpoint "
        "(http(s)://host/v1), or a CSV / JSONL file of existing responses.",
        json_schema_extra={"input": "source"},
    )
    endpoint: EndpointConfig = Field(
        default_factory=EndpointConfig, description="Endpoint settings (when path is a URL)."
    )
    batch_size: int = Field(
        default=32, gt=0, description="In process: rows generated together (prompts x samples)."
    )

    @property
    def source(self) -> Source:
        if is_url(self.path):
            return "endpoint"
        p = Path(self.path).expanduser()
        # By its name too: a responses file an earlier stage writes may not exist yet.
        named_like_data = not p.is_dir() and p.suffix.lower() in RESPONSE_SUFFIXES
        return "responses" if p.is_file() or named_like_data else "model"

    def as_model(self) -> ModelConfig:
        """The in-process loading settings (`alignlab.modeling.loading`)."""
        return ModelConfig.model_validate(self.model_dump(include=set(ModelConfig.model_fields)))


class SuiteRunConfig(Section):
    """One suite of the stage: its data file, limit and options."""

    data: str | None = Field(
        default=None,
        description="The suite's data file in its public format (`alignlab eval --list`); null = the stage's "
        "`data`, or the suite's built-in set.",
        json_schema_extra={"input": "file"},
    )
    limit: int | None = Field(
        default=None, gt=0, description="At most this many samples; null = the stage's."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The suite's options (`alignlab eval --list`), e.g. {transforms: rot13}.",
    )


def checkpoint_name(path: str) -> str:
    """A name for a checkpoint given only as a path: a recipe stage directory's name without its hash,
    a directory's or file's name, or "endpoint" for a URL."""
    if is_url(path):
        return "endpoint"
    p = Path(path.rstrip("/"))
    name = p.stem if not p.is_dir() and p.suffix.lower() in RESPONSE_SUFFIXES else p.name
    m = _STAGE_DIR.match(name)
    return m["name"] if m else name or "model"


def _named(value: Any) -> Any:
    """A bare path or a list of paths -> {derived name: path}."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return value
    named: dict[str, Any] = {}
    for v in value:
        name = checkpoint_name(v if isinstance(v, str) else str(v.get("path", "")))
        if name in named:
            raise ValueError(f"two models would both be named {name!r}; name them: {{name: path, ...}}")
        named[name] = v
    return named


def _suite_entries(value: Any) -> Any:
    """"xstest,advbench" or [xstest, advbench] -> {xstest: {}, advbench: {}}."""
    if isinstance(value, str):
        value = [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, list):
        return {s: {} for s in value}
    return value


class EvalConfig(Section):
    """Run registered eval suites on one or more checkpoints, endpoints or response files."""

    models: dict[str, EvalModelConfig] = Field(
        min_length=1,
        description="Checkpoint name -> model to evaluate (a directory, URL or responses file, or a "
        "section), e.g. {base: ${base}, sft: ${sft}}; a bare path is named after its directory or file.",
    )
    suites: Annotated[dict[str, SuiteRunConfig], SUITE_NAMES] = Field(
        min_length=1,
        description="Suites to run, by name (a list or comma-separated names, or name -> {data, limit, "
        "options})",
    )
    data: str | None = Field(
        default=None,
        description="Data file for every suite that reads one and names none (e.g. one AdvBench CSV for "
        "advbench, jailbreak and gcg).",
        json_schema_extra={"input": "file"},
    )
    limit: int | None = Field(default=None, gt=0, description="At most this many samples per suite.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options for every suite that takes them (`alignlab eval --list`); a suite's own win.",
    )
    judge: EvalModelConfig | None = Field(
        default=None, description="Judge model or endpoint, for the suites that take a judge."
    )
    baseline: EvalModelConfig | None = Field(
        default=None, description="Baseline model, endpoint or responses file for win_rate."
    )
    transfer: EvalModelConfig | None = Field(
        default=None, description="Model or endpoint the GCG suite's attack strings are transferred to."
    )
    max_new_tokens: int | None = Field(
        default=None, gt=0, description="Reply length for every suite; null = each suite's own."
    )
    chunk_size: int = Field(
        default=64, gt=0, description="Prompts asked and scored between saves of progress."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "models" in data:
                data["models"] = _named(data["models"])
            if "suites" in data:
                data["suites"] = _suite_entries(data["suites"])
        return data

    @model_validator(mode="after")
    def _check_suites(self) -> EvalConfig:
        from alignlab.evals.registry import get_suite_spec

        for name in self.models:
            if not _NAME.match(name):
                raise ValueError(f"checkpoint name {name!r} is not a plain file name (letters, digits, "
                                 "_ . + -)")  # fmt: skip
        specs = {name: get_suite_spec(name) for name in self.suites}
        taken = {k for s in specs.values() for k in s.options}
        for key in self.options:
            _runtime(key, "options")
            if key not in taken:
                raise ValueError(f"option {key!r} is taken by none of the suites {', '.join(specs)}; "
                                 "`alignlab eval --list` shows each suite's options")  # fmt: skip
        for name, spec in specs.items():
            for key in self.suites[name].options:
                _runtime(key, f"suites.{name}.options")
                if key not in spec.options:
                    valid = ", ".join(k for k in spec.options if k not in RUNTIME_OPTIONS) or "none"
                    raise ValueError(f"suite {name!r} has no option {key!r}; its options: {valid}")
            self._check_data(name, spec)
            self._check_models(name, spec)
        for key in MODEL_OPTIONS:
            if getattr(self, key) is not None and not any(key in s.options for s in specs.values()):
                users = _suites_taking(key)
                raise ValueError(f"{key} is set but none of the suites {', '.join(specs)} uses one "
                                 f"(suites that do: {users})")  # fmt: skip
        return self

    def _check_data(self, name: str, spec: Any) -> None:
        own = self.suites[name].data
        if spec.data is None and own is not None:
            raise ValueError(f"suite {name!r} uses its built-in set and reads no data file; drop its data")
        if spec.data_required and own is None and self.data is None:
            raise ValueError(f"suite {name!r} needs a data file ({spec.data}): give data (--data FILE) or "
                             f"suites.{name}.data")  # fmt: skip

    def _check_models(self, name: str, spec: Any) -> None:
        for key in MODEL_OPTIONS:
            if key in spec.options and getattr(self, key) is None and _required(spec.options[key]):
                raise ValueError(f"suite {name!r} needs a {key} (--{key} DIR_OR_URL)")
        needs_weights = spec.mode == "loglikelihood" or WHITE_BOX in spec.options
        for ckpt, model in self.models.items():
            if needs_weights and model.source != "model":
                why = "scores by log-likelihood" if spec.mode == "loglikelihood" else "needs gradients"
                what = "an endpoint" if model.source == "endpoint" else "a responses file"
                raise ValueError(f"suite {name!r} {why}: it runs only on a model directory, and checkpoint "
                                 f"{ckpt!r} is {what}")  # fmt: skip
        for key in MODEL_OPTIONS:
            other = getattr(self, key)
            if key != "baseline" and other is not None and other.source == "responses":
                raise ValueError(f"{key} must be a model directory or an endpoint, not a responses file")

    def suite_run(self, name: str) -> tuple[str | None, int | None, dict[str, Any]]:
        """(data file, limit, options) of suite `name`, the stage-wide values filled in."""
        from alignlab.evals.registry import get_suite_spec

        spec, own = get_suite_spec(name), self.suites[name]
        data = own.data if own.data is not None else (self.data if spec.data is not None else None)
        shared = {k: v for k, v in self.options.items() if k in spec.options}
        return data, own.limit if own.limit is not None else self.limit, {**shared, **own.options}


def _runtime(key: str, where: str) -> None:
    if key == WHITE_BOX:
        raise ValueError(f"{where}: {WHITE_BOX} is the model under evaluation itself; it cannot be set")
    if key in MODEL_OPTIONS:
        raise ValueError(f"{where}: set the {key} with the config key '{key}' (--{key} DIR_OR_URL)")


def _required(default: Any) -> bool:
    from alignlab.evals.registry import REQUIRED

    return default is REQUIRED


def _suites_taking(key: str) -> str:
    from alignlab.evals.registry import get_suite_spec, suite_names

    return ", ".join(n for n in suite_names() if key in get_suite_spec(n).options) or "none"
