"""`alignlab lab show`: every family's example prompts with their role labels and gold behaviour."""

from alignlab.cli import main


def test_lab_show_keeps_the_role_labels(capsys):
    try:
        main(["lab", "show", "--per-family", "1"])
    except SystemExit as e:
        assert e.code in (0, None)
    out = capsys.readouterr().out
    # The hierarchy family has a system turn: the labels are what tell it from the user's.
    assert "[system]" in out and "[user]" in out
    assert "hierarchy" in out and "injection" in out
