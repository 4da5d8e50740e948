"""`alignlab lab ...`: look at the laboratory's world. Only typer and rich load until a command runs."""

from __future__ import annotations

from typing import Annotated

import typer

from alignlab.cli_help import PLAIN_HELP

lab_app = typer.Typer(help="The laboratory: a synthetic world with a gold standard.", no_args_is_help=True,
                      **PLAIN_HELP)


@lab_app.command("show")
def show(
    seed: Annotated[int, typer.Option(help="World seed.")] = 0,
    per_family: Annotated[int, typer.Option(help="Examples per request family.")] = 2,
) -> None:
    """Print examples of every request family with their gold behaviour."""
    from alignlab.cli.tables import print_table
    from alignlab.lab.report import examples_table
    from alignlab.lab.tasks import show_examples
    from alignlab.lab.world import WorldConfig, build_world

    examples = list(show_examples(build_world(WorldConfig(seed=seed)), per_family))
    print_table(examples_table(seed, examples))
