"""Stage commands as flag -> config key mappings: shared options, and the decorator that runs them.

An option's `Annotated` type carries the `ConfigKey` it sets. `@stage_command(app, kind)` turns a
function that only lists its options into a command that also takes --output, --config and
overrides: the YAML file, then the flags, then the `key.sub=value` overrides give the stage's
config, and `alignlab.pipeline.run_in_dir` runs it into `--output`. The command's help is its
stage kind's help; an option without help text of its own shows the description of its config
key, read when the help is shown (so the losses a plugin registers are listed too).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from typer.core import TyperCommand

from alignlab.cli.app import log, resume_hint
from alignlab.config import (
    apply_overrides,
    describe_default,
    describe_key,
    load_yaml,
    set_dotted,
    validate_config,
)
from alignlab.stages import get_stage_kind


@dataclass(frozen=True)
class ConfigKey:
    """`Annotated` metadata of a stage command's option: the config key it sets.

    An option sets its value unless it is None (not given). A switch (`on` given) sets `on` when
    the flag is given and nothing otherwise. A repeatable option with `append` adds
    `append(values)` to the list at `key` (after the YAML file's items). Its help, unless the
    option has its own, is the description of `describe` (default: `key`) in the stage's config.
    """

    key: str
    on: Any = None
    describe: str | None = None
    append: Callable[[list], list] | None = None


@dataclass(frozen=True)
class Append:
    """Items a repeatable option adds to a list key."""

    items: list


# Every stage command writes into --output and may read --config and overrides.
Output = Annotated[
    Path, typer.Option(help="Stage directory: its artefacts (`alignlab stages`), config.yaml, stage.json.")
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="YAML file with the stage's config; flags and overrides win.")
]
Overrides = Annotated[
    list[str] | None, typer.Argument(help="Config overrides: key.sub=value ...", show_default=False)
]
# Options shared by several stages: flag -> key (help: the stage config's description of `describe`).
Model = Annotated[str, typer.Option(), ConfigKey("model.path", describe="model")]
Data = Annotated[Path, typer.Option(), ConfigKey("data.path", describe="data")]
Format = Annotated[str | None, typer.Option(), ConfigKey("data.format")]
MaxSteps = Annotated[int | None, typer.Option(), ConfigKey("train.max_steps")]
Epochs = Annotated[float | None, typer.Option(), ConfigKey("train.epochs")]
Lora = Annotated[bool, typer.Option("--lora"), ConfigKey("lora.enabled", on=True, describe="lora")]
SkipInvalid = Annotated[bool, typer.Option("--skip-invalid"), ConfigKey("data.skip_invalid", on=True)]


class StageCommand(TyperCommand):
    """A stage command; options without help text show their config key's description, then the
    key they set and the default it keeps when they are not given."""

    stage_kind = ""
    keys: dict[str, ConfigKey] = {}  # param name -> the ConfigKey it sets (set per command class)

    def format_help(self, ctx, formatter) -> None:
        config = get_stage_kind(self.stage_kind).config
        for param in self.params:
            ck = self.keys.get(param.name or "")
            if ck is not None and not getattr(param, "help", None):
                param.help = describe_key(config, ck.describe or ck.key) + _setting(config, ck, param)
        super().format_help(ctx, formatter)


def _setting(config, ck: ConfigKey, param) -> str:
    """`  [train.epochs, default: 1.0]`, or `  [sets lora.enabled=true]` for a switch."""
    if ck.on is not None:
        return f"  [sets {ck.key}={json.dumps(ck.on)}]" if not isinstance(ck.on, dict) else ""
    if param.required:
        return ""
    default = describe_default(config, ck.key)
    return f"  [{ck.key}, default: {default}]" if default is not None else f"  [{ck.key}]"


def config_keys(fn: Callable) -> dict[str, ConfigKey]:
    """Parameter name -> ConfigKey of every option of `fn` that sets one."""
    hints = get_type_hints(fn, include_extras=True)
    return {
        name: meta
        for name, hint in hints.items()
        for meta in getattr(hint, "__metadata__", ())
        if isinstance(meta, ConfigKey)
    }


def stage_command(app: typer.Typer, kind: str, *, name: str | None = None) -> Callable[[Callable], Callable]:
    """Register `fn`'s options, plus --output, --config and the overrides that every stage command
    takes, as the command `name` (default: the kind) that runs a `kind` stage."""
    help_text = get_stage_kind(kind).help

    def decorate(fn: Callable) -> Callable:
        keys = config_keys(fn)
        cls = type(f"{kind.title()}Command", (StageCommand,), {"stage_kind": kind, "keys": keys})

        def command(**kwargs: Any) -> None:
            flags: dict[str, Any] = {}
            for param, ck in keys.items():
                value = kwargs[param]
                if ck.append is not None:
                    if value:
                        before = flags[ck.key].items if ck.key in flags else []
                        flags[ck.key] = Append(before + ck.append(list(value)))
                elif ck.on is not None:
                    if value:
                        flags[ck.key] = ck.on
                elif value is not None:
                    flags[ck.key] = str(value) if isinstance(value, Path) else value
            run_stage_command(kind, kwargs["output"], kwargs["config"], kwargs["overrides"] or [], flags)

        command.__signature__ = _with_common_options(fn)  # what typer reads the options from
        command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}
        command.__name__, command.__doc__ = fn.__name__, fn.__doc__
        app.command(name or kind, cls=cls, help=help_text)(command)
        return fn

    return decorate


def _with_common_options(fn: Callable) -> inspect.Signature:
    """`fn`'s options (required ones first), then --output, --config and the overrides."""
    hints = get_type_hints(fn, include_extras=True)
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = inspect.signature(fn).parameters.values()
    own = [p.replace(kind=keyword, annotation=hints[p.name]) for p in params]
    required = [p for p in own if p.default is inspect.Parameter.empty]
    optional = [p for p in own if p.default is not inspect.Parameter.empty]
    output = inspect.Parameter("output", keyword, annotation=Output)
    common = [inspect.Parameter(n, keyword, default=None, annotation=a) for n, a in (("config", ConfigFile),
                                                                                   ("overrides", Overrides))]
    return inspect.Signature([*required, output, *optional, *common])


def _dotted(data: dict, key: str) -> Any:
    """The value at dotted `key` of nested `data`, or None."""
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def run_stage_command(kind: str, output: Path, config_file: Path | None, overrides: list[str],
                      flags: dict) -> dict[str, Any]:
    """The stage's config from YAML, flags and overrides (in that order), run into `output`; its summary."""
    from alignlab.pipeline import run_in_dir

    stage = get_stage_kind(kind)
    data = load_yaml(config_file) if config_file else {}
    for key, value in flags.items():
        if isinstance(value, Append):
            value = [*(_dotted(data, key) or []), *value.items]
        set_dotted(data, key, value)
    source = str(config_file) if config_file else None
    config = validate_config(stage.config, apply_overrides(data, overrides), source=source)
    with resume_hint(f"run the same command again to resume from the last checkpoint in {output}"):
        summary = run_in_dir(stage.name, config, output, source=source or "command line", log=log)
    log(f"{stage.name} done: {output}")
    return summary
