"""Stage command help: flags without a value type, every format name, the config key and default of
each option that leaves a config default in place."""

import re

import pytest

from alignlab.cli import main
from alignlab.data.formats import format_names


def help_text(capsys, *args) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([*args, "--help"])
    assert e.value.code in (0, None)
    return " ".join(capsys.readouterr().out.split())  # wrapping differs with the terminal width


@pytest.mark.parametrize("command", [["sft"], ["rm"], ["dpo"], ["score"], ["pretrain"], ["runs"],
                                     ["lab", "show"], ["label", "import"]])
def test_flags_show_no_value_type(capsys, command):
    assert "<bool>" not in help_text(capsys, *command)


@pytest.mark.parametrize("command", ["sft", "rm", "dpo", "score"])
def test_format_lists_every_format_name(capsys, command):
    text = help_text(capsys, command)
    described = text[text.index("--format"):]
    for name in ("auto", *format_names()):
        assert re.search(rf"\b{re.escape(name)}\b", described), name


def test_options_that_keep_a_config_default_show_it_and_their_key(capsys):
    text = help_text(capsys, "sft")
    assert "[train.max_steps, default: none]" in text
    assert "[train.epochs, default: 1.0]" in text
    assert "[data.format, default: auto]" in text
    assert "[sets lora.enabled=true]" in text
    dpo = help_text(capsys, "dpo")
    assert "[loss, default: dpo]" in dpo


def test_command_listings_show_each_summary_whole(capsys):
    text = help_text(capsys)
    assert "List the stage kinds, what each does and the artefacts it writes." in text
    assert "..." not in text.replace("[ARGS]...", "")
    label = help_text(capsys, "label")
    assert "a malformed record rejects the whole file." in label
