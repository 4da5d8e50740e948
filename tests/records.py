"""Record builders shared by tests that write small datasets (importable from any test folder)."""

import json


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def pair(prompt, good, bad, **extra):
    """A preference pair record in alignlab's own format."""
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": good}],
        "rejected": [{"role": "assistant", "content": bad}],
        **extra,
    }
