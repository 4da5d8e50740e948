"""Registries are the single source of names: stage kinds and losses reach the configs, the CLI
help and the listing commands from their tables; method modules never import each other."""

import ast
import re
from pathlib import Path

import pytest

from alignlab.cli import main
from alignlab.config import DPOConfig, describe_key, describe_schema, load_config
from alignlab.errors import ConfigError
from alignlab.losses import preference as P
from alignlab.losses.registry import get_loss, loss_names, register_loss, unregister_loss
from alignlab.recipe import Recipe
from alignlab.stages import STAGE_KINDS

SRC = Path(__file__).resolve().parents[2] / "src" / "alignlab"


def words(text: str) -> set[str]:
    """Whole names in `text`: "orpo" is no evidence for "rpo"."""
    return set(re.findall(r"[A-Za-z0-9_]+", text))


def cli_output(capsys, *args) -> str:
    capsys.readouterr()
    try:
        main(list(args))
    except SystemExit as e:
        assert e.code in (0, None)
    return capsys.readouterr().out


@pytest.fixture
def extra_loss(monkeypatch):
    """A loss registered by the test itself, as a plugin would register one."""
    monkeypatch.setenv("COLUMNS", "200")

    @register_loss("halfdpo", needs_reference=True)
    def halfdpo_loss(pc, pr, rc, rr, *, beta: float = 0.05):
        """Half-DPO: DPO at half the usual beta (a test loss)."""
        return P.dpo_loss(pc, pr, rc, rr, beta=beta)

    yield "halfdpo"
    unregister_loss("halfdpo")


@pytest.mark.parametrize("kind", list(STAGE_KINDS))
def test_every_field_of_every_stage_config_is_described(kind):
    rows = describe_schema(STAGE_KINDS[kind].config)
    assert rows
    for key, _, desc in rows:
        assert desc, f"{kind}: config key '{key}' has no description"


def test_every_recipe_field_is_described_and_names_the_stage_kinds():
    for key, _, desc in describe_schema(Recipe):
        assert desc, f"recipe key '{key}' has no description"
    assert set(STAGE_KINDS) <= words(describe_key(Recipe, "stages.kind"))


def test_a_loss_registered_at_run_time_is_valid_described_listed_and_in_the_help(extra_loss, capsys):
    base = {"model": {"path": "m"}, "data": {"path": "d"}}
    assert load_config(DPOConfig, base=base, overrides=[f"loss={extra_loss}"]).loss == extra_loss
    assert extra_loss in words(describe_key(DPOConfig, "loss"))
    assert extra_loss in words(cli_output(capsys, "dpo", "--help"))
    listing = cli_output(capsys, "losses")
    assert extra_loss in words(listing) and "Half-DPO" in listing
    unregister_loss(extra_loss)
    with pytest.raises(ConfigError, match="unknown preference loss 'halfdpo'"):
        load_config(DPOConfig, base=base, overrides=[f"loss={extra_loss}"])
    assert extra_loss not in words(describe_key(DPOConfig, "loss"))


def test_dpo_help_and_the_loss_description_list_every_registered_loss_by_whole_name(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    help_words = words(cli_output(capsys, "dpo", "--help"))
    described = words(describe_key(DPOConfig, "loss"))
    for name in loss_names():
        assert name in help_words and name in described, name


def test_losses_lists_what_each_loss_takes(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    rows = {line.split("│")[1].strip(): line for line in cli_output(capsys, "losses").splitlines()
            if line.count("│") > 2 and line.split("│")[1].strip()}
    assert set(loss_names()) <= set(rows)
    assert "unpaired" in rows["kto"] and "estimated per batch: kl" in rows["kto"]
    assert "kl=" not in rows["kto"]  # estimated, not a setting
    assert "beta=2.0, gamma=1.0" in rows["simpo"] and get_loss("simpo").hyperparameters == {
        "beta": 2.0,
        "gamma": 1.0,
    }


def test_stages_lists_every_kind_with_its_outputs(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    out = cli_output(capsys, "stages")
    assert set(STAGE_KINDS) <= words(out)
    for kind in STAGE_KINDS.values():
        for name, artefact in kind.outputs.items():
            assert f"{name}: {artefact.path}" in out


def test_each_stage_command_shows_its_stage_kinds_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    for kind in ("pretrain", "sft", "rm", "score", "dpo", "ppo", "grpo", "rloo"):
        assert " ".join(STAGE_KINDS[kind].help.split()) in " ".join(cli_output(capsys, kind,
                                                                               "--help").split())


def _imported_modules(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_no_method_module_in_training_imports_another():
    """Methods share code through non-method modules (loop, causal_lm, reference, ...), never sideways."""
    methods = {
        k.runner.split(":")[0] for k in STAGE_KINDS.values() if k.runner.startswith("alignlab.training.")
    }
    assert {"alignlab.training.sft", "alignlab.training.dpo"} <= methods
    for module in methods:
        path = SRC / (module.removeprefix("alignlab.").replace(".", "/") + ".py")
        sideways = (_imported_modules(path) & methods) - {module}
        assert not sideways, f"{module} imports the method module(s) {sorted(sideways)}"


# Modules over the size budget, and the size they may not grow past until they are split.
OVERSIZED: dict[str, int] = {}


def test_no_module_is_over_450_lines():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        lines = len(path.read_text().splitlines())
        assert lines <= OVERSIZED.get(rel, 450), f"{rel} has {lines} lines; split it by job"


def _docstrings(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node)
            if doc:
                yield doc


def test_no_docstring_lists_the_losses_by_hand():
    """A hand-written list goes stale when a loss is registered (`rpo` was missing from such lists):
    only the module that defines the losses names them; the rest point at the registry."""
    names = {n.lower() for n in loss_names()}
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).as_posix() == "losses/preference.py":
            continue
        for doc in _docstrings(path):
            named = names & {w.lower().removesuffix("-hf") for w in re.findall(r"[A-Za-z][A-Za-z-]*", doc)}
            assert len(named) < 3, f"{path.relative_to(SRC)} lists losses by hand: {sorted(named)}"
