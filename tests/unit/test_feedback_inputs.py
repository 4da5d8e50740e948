"""What the cai and rlaif stages read and how they are configured: prompt files, pairs to label with
the labels they carry, constitutions by name or file, judges by directory or URL, input checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignlab.config.feedback import BUILTIN_CONSTITUTIONS, CAIConfig, RLAIFConfig
from alignlab.config.sections import ModelConfig
from alignlab.data.schema import Message, assistant, user
from alignlab.errors import ConfigError, DataError
from alignlab.feedback.audit import compare_labels, correct_by_pair
from alignlab.feedback.constitution import constitution_from_config, shipped_names
from alignlab.feedback.inputs import read_pairs_to_label, read_prompt_file
from alignlab.pipeline import PlannedStage, check_inputs, stage_hash
from alignlab.stages import get_stage_kind
from records import pair, write_jsonl


def turn(role: str, text: str) -> dict:
    return {"role": role, "content": text}


def test_prompt_files_give_conversations_to_answer(tmp_path):
    rows = [
        {"id": "s1", "messages": [turn("system", "Be brief."), turn("user", "Hi?"),
                                  turn("assistant", "an SFT answer, dropped")]},
        {"prompt": "Name a colour."},
        {"prompt": [{"role": "user", "content": "2+2?"}], "id": 7},
    ]
    got = read_prompt_file(write_jsonl(tmp_path / "p.jsonl", rows))
    assert got.ids == ["s1", "2", "7"]
    assert got.prompts[0] == [Message(role="system", content="Be brief."), user("Hi?")]
    assert got.prompts[1] == [user("Name a colour.")] and got.prompts[2] == [user("2+2?")]
    csv = tmp_path / "p.csv"
    csv.write_text("goal,target\nWrite a poem,Sure\nSay hi,Sure\n")
    assert read_prompt_file(csv, limit=1).prompts == [[user("Write a poem")]]


def test_bad_prompt_rows_name_the_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "ok"}, {"messages": [turn("assistant", "x")]}])
    with pytest.raises(DataError, match=r"p.jsonl:2: the prompt must end with a user"):
        read_prompt_file(path)
    dup = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "id": 1}, {"prompt": "b", "id": 1}])
    with pytest.raises(DataError, match="ids are not unique"):
        read_prompt_file(dup)


def test_pairs_to_label_keep_their_labels_apart(tmp_path):
    """The labelling format's gold and a preference file's chosen side become reference labels only."""
    native = write_jsonl(tmp_path / "n.jsonl", [
        {"id": "g", "prompt": "Capital of Peru?", "response_a": "Cusco.", "response_b": "Lima.", "gold": "b"},
        {"id": "u", "prompt": "Hi", "response_a": "Hello.", "response_b": "Go away."},
    ])
    got = read_pairs_to_label(native)
    assert got.format == "pairs" and [it.id for it in got.items] == ["g", "u"]
    assert got.items[0].first == (assistant("Cusco."),)  # shown in file order; the judge sees both orders
    (gold,) = got.input_labels
    assert (gold.id, gold.chosen, gold.annotator) == ("g", [assistant("Lima.")], "gold")
    prefs = write_jsonl(tmp_path / "p.jsonl", [pair("q", "good", "bad", id="x"), pair("q", "same", "same")])
    got = read_pairs_to_label(prefs)
    assert got.format == "preference" and got.skipped == 1 and len(got.items) == 1
    assert [p.id for p in got.input_labels] == ["x", None]


def test_compare_labels_hand_worked():
    """Three labelled pairs against gold: pair 0 agrees, pair 1 picks the other response, pair 2 is a
    tie where gold is decisive (wrong). Accuracy 1/3; a fourth pair has no gold and is unmatched."""
    def p(i, chosen, rejected, tie=False, who="h"):
        return pair_record(i, chosen, rejected, tie, who)

    gold = [p(0, "a0", "b0", who="gold"), p(1, "a1", "b1", who="gold"), p(2, "b2", "a2", who="gold")]
    labels = [p(0, "a0", "b0"), p(1, "b1", "a1"), p(2, "a2", "b2", tie=True), p(3, "a3", "b3")]
    out = compare_labels(labels, gold)
    assert (out["pairs"], out["matched"]) == (4, 3)
    assert out["accuracy"]["value"] == pytest.approx(1 / 3) and out["accuracy"]["n"] == 3
    assert correct_by_pair(labels, gold) == {k: v for k, v in zip(
        [key(x) for x in labels[:3]], [True, False, False], strict=True)}


def pair_record(i, chosen, rejected, tie, who):
    from alignlab.data.schema import PreferencePair

    return PreferencePair(prompt=[user(f"q{i}")], chosen=[assistant(chosen)], rejected=[assistant(rejected)],
                          tie=tie, annotator=who)


def key(p) -> str:
    from alignlab.feedback.labeller import pair_key

    return pair_key(p.prompt, p.chosen, p.rejected)


def test_constitutions_by_name_or_file_and_the_shipped_list():
    assert tuple(shipped_names()) == tuple(sorted(BUILTIN_CONSTITUTIONS))
    assert constitution_from_config("lab").name == "alignlab-lab"
    with pytest.raises(ConfigError, match=r"key 'constitution': nowhere.yaml: constitution file not found"):
        constitution_from_config("nowhere.yaml")


def test_backends_are_directories_or_urls_and_only_directories_must_exist(tmp_path):
    data = write_jsonl(tmp_path / "p.jsonl", [pair("q", "a", "b")])
    kind = get_stage_kind("rlaif")

    def check(**config):
        cfg = RLAIFConfig.model_validate({"pairs": str(data), **config})
        check_inputs([PlannedStage("s", kind, cfg, (), stage_hash(kind, cfg), tmp_path / "s")])
        return cfg

    cfg = check(judge="http://127.0.0.1:8000/v1", constitution="default")
    assert cfg.judge.is_endpoint and cfg.judge.endpoint.model is None
    with pytest.raises(ConfigError, match=r"config key 'stages.s.config.judge.path': model directory"):
        check(judge=str(tmp_path / "no-model"))
    with pytest.raises(ConfigError, match=r"stages.s.config.constitution': file .*gone.yaml' not found"):
        check(judge="https://api.example/v1", constitution=str(tmp_path / "gone.yaml"))
    section = RLAIFConfig.model_validate({"pairs": "p", "judge": {"path": "d", "dtype": "float32"}}).judge
    assert section.as_model() == ModelConfig(path="d", dtype="float32")


def test_feedback_configs_are_checked():
    with pytest.raises(ConfigError, match="clamp"):
        from alignlab.config import validate_config

        validate_config(RLAIFConfig, {"pairs": "p", "judge": "d", "clamp": [0.6, 0.4]})
    with pytest.raises(ConfigError, match="reference_annotator"):
        validate_config(RLAIFConfig, {"pairs": "p", "judge": "d", "reference_annotator": "h1"})
    cfg = validate_config(CAIConfig, {"model": "m", "prompts": "p"})
    assert cfg.critic is None and cfg.rounds == 1 and cfg.constitution == "default"


def test_list_inputs_are_checked_item_by_item(tmp_path):
    kind = get_stage_kind("lab_judge_data")
    world = tmp_path / "world"
    world.mkdir()
    cfg = kind.config.model_validate({"world": str(world), "exclude": [str(tmp_path / "missing.jsonl")]})
    with pytest.raises(ConfigError, match=r"config key 'stages.s.config.exclude.0': file .*missing.jsonl"):
        check_inputs([PlannedStage("s", kind, cfg, (), stage_hash(kind, cfg), tmp_path / "s")])


def test_published_comparison_file_labels_through_the_config(tmp_path):
    path = Path(tmp_path / "cmp.json")
    path.write_text(json.dumps(["Which response is more ethical? Options:"]))
    constitution = constitution_from_config(str(path))
    assert [p.id for p in constitution.comparison_principles()] == ["comparison-0"]
