"""How every alignlab command shows its help: plain click help, command listings not cut short.

Typer's rich help marks flags that take no value `<bool>` and reads "[...]" in help texts as markup;
click's listing of a group's commands cuts each summary to the terminal width with "...". Every
`typer.Typer` of alignlab (the root app, `lab`, `label`) is made with `**PLAIN_HELP`. It lives
outside the `alignlab.cli` package and imports only typer, so the command modules that package
imports (`lab.cli`, `labelling.cli`) can use it without importing the whole CLI.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup


class PlainHelpGroup(TyperGroup):
    """A command group whose listing shows each command's first sentence whole, wrapped."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


PLAIN_HELP: dict[str, Any] = {"rich_markup_mode": None, "cls": PlainHelpGroup}
