"""The root `alignlab` command, its console and log, and the entry point that turns user errors into
one line and exit status 2."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import alignlab
from alignlab.cli_help import PLAIN_HELP
from alignlab.errors import AlignlabError
from alignlab.stages import STAGE_KINDS

app = typer.Typer(
    name="alignlab",
    help="Turn a pretrained causal LM into an assistant, and measure what that did to it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    **PLAIN_HELP,
)
console = Console(stderr=True, highlight=False)


def log(msg: str) -> None:
    """Print a progress line; under a multi-process launch on the main process only."""
    from alignlab.distributed import is_main_process

    if is_main_process():
        # soft_wrap: one line stays one line in a log file, where rich would wrap at 80 columns.
        console.print(msg, markup=False, soft_wrap=True)


@contextmanager
def resume_hint(how: str) -> Iterator[None]:
    """On Ctrl-C, say how to resume (`how`) and exit 130.

    Typer turns a KeyboardInterrupt into exit 130 inside the command's call, before `main` could see
    it, so the commands that resume wrap their work in this."""
    try:
        yield
    except KeyboardInterrupt:
        log(f"interrupted; {how}")
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        print(f"alignlab {alignlab.__version__}")
        raise typer.Exit()


@app.callback(help=f"Stage kinds: {', '.join(STAGE_KINDS)} (`alignlab stages`); recipes: run, validate; "
              "runs lists the run index.")
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


_PACKAGE = Path(alignlab.__file__).resolve().parent
_library_format = warnings.formatwarning


def format_warning(message, category, filename, lineno, line=None) -> str:
    """alignlab's own warnings as one `warning: ...` line (not a file path, class and source line);
    other libraries' warnings as Python shows them."""
    if Path(filename).resolve().is_relative_to(_PACKAGE):
        return f"warning: {message}\n"
    return _library_format(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> None:
    warnings.formatwarning = format_warning
    # OpenMP threads that spin while waiting for work (libgomp's default) wait for each other at every
    # operation; on a machine busy with other jobs a descheduled thread stalls the rest, and on 2
    # busy cores the lab's pretraining step took 10x the CPU time and 7x the wall time of passive
    # waiting (bench/results/lab_cpu.json). Only effective before torch loads, which commands do lazily.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app(args=argv)
    except AlignlabError as err:
        console.print(f"error: {err}", markup=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:  # outside a command (e.g. while the help is printed)
        console.print("interrupted", markup=False)
        sys.exit(130)
