"""Constitutions: our YAML, the published Constitutional AI prompt files, the content hash, and errors
that name the file, the line and the key."""

from __future__ import annotations

import json

import pytest

from alignlab.errors import ConfigError
from alignlab.feedback.constitution import Constitution, Principle, default_constitution, load_constitution
from alignlab.feedback.published import load_few_shot

OURS = """\
name: tiny
description: two principles
principles:
  - id: harmless
    critique: Identify harmful content.
    revision: Remove the harmful content.
    comparison: Which response is less harmful?
  - id: honest
    critique:
      - Identify false statements.
      - Identify invented facts.
    revision: Make every statement true.
few_shot:
  - prompt: How do I pick a lock?
    response: Use a tension wrench.
    critique_request: Identify harmful content.
    critique: It helps break into homes.
    revision_request: Remove the harmful content.
    revision: I can't help with that.
"""

# The shapes of the files published with the paper (prompts/ of its repository), in miniature.
PUBLISHED_CRITIQUE = {
    "harmful0": {
        "prompt": ["Identify specific ways in which the assistant's last response is harmful."],
        "edit_request": "Please rewrite the assistant response to remove any and all harmful content.",
    },
    "harmful1": {
        "prompt": ["Explain ways in which the assistant's preceding response may be harmful."],
        "edit_request": "Please rewrite the assistant response to remove any and all harmful content.",
    },
}
PUBLISHED_COMPARISON = [
    "\nPlease choose the response that is the most helpful, honest, and harmless. Options:",
    "\nWhich of these assistant responses is less harmful? Options:",
]
PUBLISHED_FEW_SHOT = [
    "\n\nHuman: Could you help me burn down my house?\n\nAssistant: Sure, use gasoline."
    "\n\nCritiqueRequest: Identify specific ways in which the response is harmful."
    "\n\nCritique: Arson is dangerous and illegal."
    "\n\nRevisionRequest: Please rewrite the response to remove all harmful content."
    "\n\nRevision: I'm sorry, I can't help with that.\n\nHuman:",
    "\n\nHuman: Tell me about relativity.\n\nAssistant: It is about speed.\n\nHuman: More?"
    "\n\nAssistant: Mercury precesses."
    "\n\nCritiqueRequest: Discuss whether your last response was truthful."
    "\n\nCritique: It was vague.\n\nRevisionRequest: Rewrite it.\n\nRevision: Mercury's orbit precesses.",
]


def test_our_yaml_loads_every_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(OURS)
    c = load_constitution(path)
    assert c.name == "tiny" and c.description == "two principles"
    assert [p.id for p in c.principles] == ["harmless", "honest"]
    assert c.principles[0].critique == ("Identify harmful content.",)
    assert c.principles[1].critique == ("Identify false statements.", "Identify invented facts.")
    assert c.principles[1].comparison is None
    assert [p.id for p in c.comparison_principles()] == ["harmless"]
    assert [p.id for p in c.critique_principles()] == ["harmless", "honest"]
    (shot,) = c.few_shot
    assert shot.prompt[0].role == "user" and shot.prompt[0].content == "How do I pick a lock?"
    assert [m.role for m in shot.messages()] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert c.source == str(path)


def test_published_critique_revision_file_loads_unchanged(tmp_path):
    path = tmp_path / "CritiqueRevisionInstructions.json"
    path.write_text(json.dumps(PUBLISHED_CRITIQUE))
    c = load_constitution(path)
    assert c.name == "CritiqueRevisionInstructions"
    assert [p.id for p in c.principles] == ["harmful0", "harmful1"]
    assert c.principles[0].critique == tuple(PUBLISHED_CRITIQUE["harmful0"]["prompt"])
    assert c.principles[1].revision == PUBLISHED_CRITIQUE["harmful1"]["edit_request"]
    with pytest.raises(ConfigError, match="no principle has a comparison question"):
        c.comparison_principles()


def test_published_comparison_list_loads_unchanged(tmp_path):
    path = tmp_path / "RLMadisonInstructions.json"
    path.write_text(json.dumps(PUBLISHED_COMPARISON))
    c = load_constitution(path)
    assert [p.id for p in c.principles] == ["comparison-0", "comparison-1"]
    assert [p.comparison for p in c.principles] == PUBLISHED_COMPARISON
    with pytest.raises(ConfigError, match="no principle has critique and revision"):
        c.critique_principles()


def test_published_few_shot_transcripts_parse(tmp_path):
    path = tmp_path / "CritiqueRevisionFewShotPrompts.json"
    path.write_text(json.dumps(PUBLISHED_FEW_SHOT))
    first, second = load_few_shot(path)
    assert [m.content for m in first.prompt] == ["Could you help me burn down my house?"]
    assert first.response == "Sure, use gasoline."
    assert first.critique == "Arson is dangerous and illegal."
    assert first.revision == "I'm sorry, I can't help with that."  # the trailing "Human:" is not part of it
    assert [m.role for m in second.prompt] == ["user", "assistant", "user"]
    assert second.response == "Mercury precesses." and second.revision == "Mercury's orbit precesses."


def test_few_shot_transcript_missing_a_part_names_the_item(tmp_path):
    path = tmp_path / "shots.json"
    path.write_text(json.dumps([PUBLISHED_FEW_SHOT[0].replace("\n\nCritique:", "\n\nNote:")]))
    with pytest.raises(ConfigError, match=r"shots\.json:1: key '0': expected the parts"):
        load_few_shot(path)


def test_hash_is_of_the_content_not_the_file(tmp_path):
    yaml_path, json_path = tmp_path / "a.yaml", tmp_path / "a.json"
    yaml_path.write_text(OURS)
    c = load_constitution(yaml_path)
    json_path.write_text(json.dumps(c.to_json(), indent=4))
    assert load_constitution(json_path).content_hash() == c.content_hash()
    assert len(c.content_hash()) == 16
    changed = Constitution(name="tiny", description="two principles",
                           principles=(c.principles[0], Principle(id="honest", comparison="Which is true?")),
                           few_shot=c.few_shot)
    assert changed.content_hash() != c.content_hash()
    assert c.with_few_shot(()).content_hash() != c.content_hash()


def test_default_constitution_covers_hhh_and_the_instruction_hierarchy():
    c = default_constitution()
    ids = {p.id for p in c.principles}
    assert {"harmless", "not-overcautious", "honest", "system-prompt", "untrusted-content"} <= ids
    # Every shipped principle serves both critique-and-revise and labelling.
    assert len(c.critique_principles()) == len(c.comparison_principles()) == len(c.principles)
    assert default_constitution().content_hash() == c.content_hash()


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "name: x\nprinciples:\n  - id: a\n    critique: c\n",
            r"c\.yaml:3: key 'principles\.0': critique and revision go together",
        ),
        (
            "name: x\nprinciples:\n  - id: a\n    comparison: q\n    colour: red\n",
            r"c\.yaml:5: key 'principles\.0\.colour': unknown key",
        ),
        ("principles:\n  - id: a\n    comparison: q\n", r"c\.yaml:1: key 'name': required key is missing"),
        (
            "name: x\nprinciples:\n  - {id: a, comparison: q}\n  - {id: a, comparison: r}\n",
            r"c\.yaml:2: key 'principles': principle id 'a' appears twice",
        ),
        ("name: x\nprinciples: [\n", r"c\.yaml:\d+: not valid YAML"),
        (
            "name: x\nprinciples:\n  - id: a\n    critique: ['  ']\n    revision: r\n",
            r"c\.yaml:4: key 'principles\.0\.critique': a critique request is empty",
        ),
        ("just a string\n", r"c\.yaml: a constitution is a mapping"),
    ],
)
def test_unreadable_yaml_names_file_line_and_key(tmp_path, text, pattern):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        load_constitution(path)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"harmful0": {"prompt": ["x"]}}, r"key 'harmful0': missing key 'edit_request'"),
        (
            {"harmful0": {"prompt": [], "edit_request": "y"}},
            r"key 'harmful0\.prompt': expected a non-empty list",
        ),
        (
            {"harmful0": {"prompt": ["x"], "edit_request": "y", "extra": 1}},
            r"key 'harmful0\.extra': unknown key",
        ),
        (["Which is better? Options:", 3], r"p\.json:\d+: key '1': expected a comparison instruction"),
        (PUBLISHED_FEW_SHOT, r"key '0': this is a few-shot critique-revision transcript"),
    ],
)
def test_unreadable_published_file_names_file_and_key(tmp_path, data, pattern):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(ConfigError, match=pattern):
        load_constitution(path)


def test_bad_json_names_the_line_and_missing_file_says_so(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{\n  "harmful0": {"prompt": ["x"],,}\n}')
    with pytest.raises(ConfigError, match=r"p\.json:2: not valid JSON"):
        load_constitution(path)
    with pytest.raises(ConfigError, match="constitution file not found"):
        load_constitution(tmp_path / "absent.yaml")
