"""The `alignlab` command: a thin layer over the stages, with no logic of its own.

`app` is the root command (`app.py`); the stage commands are flag -> config key mappings
(`stage_commands.py`, built with `options.py`); recipes, the run index and the registries have
their commands in `commands.py`; the laboratory and the labelling app bring their own sub-commands
(`alignlab.lab.cli`, `alignlab.labelling.cli`). Every error a user can cause (an `AlignlabError`)
prints one line without a traceback and exits 2.
"""

from alignlab.cli import commands, eval_command, stage_commands  # noqa: F401  (registers the commands)
from alignlab.cli.app import app, main
from alignlab.lab.cli import lab_app
from alignlab.labelling.cli import label_app

app.add_typer(lab_app, name="lab")
# The labelling app's commands live beside it; its module imports only typer until a command runs.
app.add_typer(label_app, name="label", help="Preference-labelling web app: serve, users, import, export.")

__all__ = ["app", "main"]
