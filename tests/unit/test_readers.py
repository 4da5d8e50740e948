"""Dataset readers: every real format parsed to exact messages, detection, file types, errors."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from alignlab.data.formats import FORMATS, detect_format
from alignlab.data.readers import (
    format_names,
    read_conversations,
    read_feedback,
    read_preferences,
    read_records,
    write_records,
)
from alignlab.data.schema import (
    BinaryFeedback,
    Conversation,
    Message,
    PreferencePair,
    ToolCall,
    assistant,
    system,
    user,
)
from alignlab.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HH_TEST = SHARED_DATA / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pairs(result) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in result]


# ------------------------------------------------------------------------------------ samples

MESSAGES_ROW = {
    "messages": [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Weather in"}, {"type": "text", "text": "Paris?"}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
        {"role": "function", "name": "clock", "content": "noon"},
        {"role": "assistant", "content": "18C and sunny."},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
    "id": 7,
}

SHAREGPT_ROW = {
    "system": "Be kind.",
    "tools": '[{"name": "add", "parameters": {}}]',
    "conversations": [
        {"from": "human", "value": "What is 2+3?"},
        {"from": "function_call", "value": '{"name": "add", "arguments": {"a": 2, "b": 3}}'},
        {"from": "observation", "value": "5"},
        {"from": "gpt", "value": "It is 5."},
        {"from": "user", "value": "Thanks"},
        {"from": "function_call", "value": "not json, kept as text"},
    ],
}

HH_ROW = {
    "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\n"
    "Assistant:  Mix flour, water, yeast. ",
    "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant: No idea.",
}

ULTRA_ROW = {
    "prompt": "Name a prime.",
    "prompt_id": "abc123",
    "chosen": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}],
    "rejected": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "9"}],
    "messages": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}],
    "score_chosen": 9.0,
    "score_rejected": 2.5,
}

SAMPLES = {
    "messages": MESSAGES_ROW,
    "sharegpt": SHAREGPT_ROW,
    "alpaca": {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    "dolly": {
        "instruction": "Summarise.",
        "context": "A long text.",
        "response": "Short.",
        "category": "summarization",
    },
    "prompt-completion": {"prompt": "The sky is", "completion": " blue."},
    "hh-rlhf": HH_ROW,
    "ultrafeedback": ULTRA_ROW,
    "preference": {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Rome."},
    "kto": {"prompt": "2+2?", "completion": "4", "label": True},
}


def test_every_format_has_a_sample_and_detection_is_unambiguous():
    assert sorted(SAMPLES) == sorted(format_names())
    for name, row in SAMPLES.items():
        matching = [spec.name for spec in FORMATS.values() if spec.detect(row)]
        assert matching == [name], (name, matching)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_auto_detection_reads_each_format(tmp_path, name):
    result = read_records(write_jsonl(tmp_path / "d.jsonl", [SAMPLES[name]]))
    assert result.format == name
    assert result.kind == FORMATS[name].kind
    assert len(result.records) == 1 and result.skipped == 0


# ------------------------------------------------------------------------------------ conversations


def test_messages_with_tool_calls_content_parts_and_tools(tmp_path):
    conv = read_conversations(write_jsonl(tmp_path / "m.jsonl", [MESSAGES_ROW])).records[0]
    assert conv.messages == [
        system("You are terse."),
        user("Weather in\nParis?"),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="call_1", name="weather", arguments='{"city": "Paris"}')],
        ),
        Message(role="tool", content="18C, sunny", tool_call_id="call_1"),
        Message(role="tool", content="noon", name="clock"),
        assistant("18C and sunny."),
    ]
    assert conv.id == "7"
    assert conv.metadata == {"tools": MESSAGES_ROW["tools"]}


def test_preference_and_kto_records_keep_their_tool_schemas(tmp_path):
    tools = [{"type": "function", "function": {"name": "weather"}}]
    pair = {"prompt": "Weather?", "chosen": "Sunny.", "rejected": "No.", "tools": tools}
    assert read_preferences(write_jsonl(tmp_path / "p.jsonl", [pair])).records[0].metadata == {"tools": tools}
    as_text = {**pair, "tools": json.dumps(tools)}  # hub exports often store the schemas as a JSON string
    assert read_preferences(write_jsonl(tmp_path / "s.jsonl", [as_text])).records[0].metadata == {
        "tools": tools
    }
    kto = {"prompt": "Weather?", "completion": "Sunny.", "label": True, "tools": tools}
    assert read_feedback(write_jsonl(tmp_path / "k.jsonl", [kto])).records[0].metadata == {"tools": tools}


def test_sharegpt_roles_function_calls_system_and_tools(tmp_path):
    conv = read_conversations(write_jsonl(tmp_path / "s.jsonl", [SHAREGPT_ROW])).records[0]
    assert conv.messages == [
        system("Be kind."),
        user("What is 2+3?"),
        Message(role="assistant", tool_calls=[ToolCall(name="add", arguments={"a": 2, "b": 3})]),
        Message(role="tool", content="5"),
        assistant("It is 5."),
        user("Thanks"),
        assistant("not json, kept as text"),
    ]
    assert conv.metadata == {"tools": [{"name": "add", "parameters": {}}]}


def test_alpaca_json_array_with_and_without_input_system_and_history(tmp_path):
    rows = [
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        {"instruction": "Say hi.", "input": "", "output": "Hi!", "text": "### Instruction: Say hi. ..."},
        {"instruction": "And now?", "output": "Bye.", "system": "Be brief.", "history": [["Hello", "Hey."]]},
    ]
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    result = read_conversations(path)
    assert result.format == "alpaca"
    a, b, c = result.records
    assert pairs(a.messages) == [("user", "Add the numbers.\n\n2 and 3"), ("assistant", "5")]
    assert pairs(b.messages) == [("user", "Say hi."), ("assistant", "Hi!")]
    assert b.metadata == {}  # the rendered `text` copy is not kept
    assert pairs(c.messages) == [
        ("system", "Be brief."),
        ("user", "Hello"),
        ("assistant", "Hey."),
        ("user", "And now?"),
        ("assistant", "Bye."),
    ]


def test_dolly_jsonl_keeps_category(tmp_path):
    rows = [
        SAMPLES["dolly"],
        {"instruction": "Name a colour.", "context": "", "response": "Red.", "category": "open_qa"},
    ]
    result = read_conversations(write_jsonl(tmp_path / "dolly.jsonl", rows))
    assert result.format == "dolly"
    assert pairs(result.records[0].messages) == [
        ("user", "Summarise.\n\nA long text."),
        ("assistant", "Short."),
    ]
    assert pairs(result.records[1].messages) == [("user", "Name a colour."), ("assistant", "Red.")]
    assert [r.metadata for r in result.records] == [{"category": "summarization"}, {"category": "open_qa"}]


def test_json_object_with_data_list_and_jsonl_saved_as_json(tmp_path):
    obj = tmp_path / "obj.json"
    obj.write_text(json.dumps({"version": 1, "data": [SAMPLES["alpaca"]]}), encoding="utf-8")
    assert pairs(read_conversations(obj).records[0].messages)[1] == ("assistant", "5")
    lines = write_jsonl(tmp_path / "lines.json", [SAMPLES["alpaca"], SAMPLES["alpaca"]])
    assert len(read_conversations(lines).records) == 2


def test_prompt_completion_is_a_conversation(tmp_path):
    conv = read_conversations(write_jsonl(tmp_path / "pc.jsonl", [SAMPLES["prompt-completion"]])).records[0]
    assert pairs(conv.messages) == [("user", "The sky is"), ("assistant", " blue.")]


# ------------------------------------------------------------------------------------ hh-rlhf


def hh(tmp_path: Path, *rows: dict) -> Path:
    return write_jsonl(tmp_path / "hh.jsonl", list(rows))


def test_hh_shared_multi_turn_prefix(tmp_path):
    pair = read_preferences(hh(tmp_path, HH_ROW)).records[0]
    assert pairs(pair.prompt) == [("user", "Hi"), ("assistant", "Hello!"), ("user", "How do I bake bread?")]
    assert pairs(pair.chosen) == [("assistant", "Mix flour, water, yeast.")]
    assert pairs(pair.rejected) == [("assistant", "No idea.")]
    assert pair.tie is False


def test_hh_identical_transcripts_are_a_tie(tmp_path):
    text = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Joke?\n\nAssistant: No."
    pair = read_preferences(hh(tmp_path, {"chosen": text, "rejected": text})).records[0]
    assert pairs(pair.prompt) == [("user", "Hi"), ("assistant", "Hello!"), ("user", "Joke?")]
    assert pairs(pair.chosen) == pairs(pair.rejected) == [("assistant", "No.")]
    assert pair.tie is True
    # A tie says nothing about desirability: KTO gets no records from it.
    with pytest.raises(DataError, match="no usable feedback records"):
        read_feedback(tmp_path / "hh.jsonl")


def test_hh_chosen_ending_with_empty_assistant_turn(tmp_path):
    row = {
        "chosen": "\n\nHuman: Address of X?\n\nAssistant:",
        "rejected": "\n\nHuman: Address of X?\n\nAssistant: It is 1 Main St.",
    }
    pair = read_preferences(hh(tmp_path, row)).records[0]
    assert pairs(pair.prompt) == [("user", "Address of X?")]
    assert pairs(pair.chosen) == [("assistant", "")]
    assert pairs(pair.rejected) == [("assistant", "It is 1 Main St.")]


def test_hh_turns_differing_before_the_last_give_multi_turn_responses(tmp_path):
    row = {
        "chosen": "\n\nHuman: Q1\n\nAssistant: A1\n\nHuman: Q2\n\nAssistant: A2",
        "rejected": "\n\nHuman: Q1\n\nAssistant: B1\n\nHuman: R2\n\nAssistant: B2",
    }
    pair = read_preferences(hh(tmp_path, row)).records[0]
    assert pairs(pair.prompt) == [("user", "Q1")]
    assert pairs(pair.chosen) == [("assistant", "A1"), ("user", "Q2"), ("assistant", "A2")]
    assert pairs(pair.rejected) == [("assistant", "B1"), ("user", "R2"), ("assistant", "B2")]


def test_hh_responses_starting_with_a_human_turn_are_malformed(tmp_path):
    row = {
        "chosen": "\n\nHuman: Q1\n\nAssistant: A1\n\nHuman: Q2\n\nAssistant: A2",
        "rejected": "\n\nHuman: Q1\n\nAssistant: A1\n\nHuman: other\n\nAssistant: B2",
    }
    path = hh(tmp_path, HH_ROW, row)
    with pytest.raises(DataError) as err:
        read_preferences(path)
    assert str(err.value).startswith(
        f"{path}:2: chosen and rejected first differ at turn 3, which is not an assistant"
    )
    result = read_preferences(path, skip_invalid=True)
    assert (len(result.records), result.skipped) == (1, 1)


def test_hh_without_leading_blank_line_and_text_before_first_turn(tmp_path):
    ok = {"chosen": "Human: Hi\n\nAssistant: Yo", "rejected": "Human: Hi\n\nAssistant: Hey"}
    bad = {"chosen": "preamble\n\nHuman: Hi\n\nAssistant: Yo", "rejected": "\n\nHuman: Hi\n\nAssistant: Hey"}
    path = hh(tmp_path, ok, bad)
    with pytest.raises(DataError, match=r"hh\.jsonl:2: chosen has text before its first"):
        read_preferences(path)
    assert pairs(read_preferences(path, limit=1).records[0].chosen) == [("assistant", "Yo")]


@pytest.mark.skipif(not HH_TEST.exists(), reason=f"shared data folder absent ({HH_TEST} not found)")
def test_real_hh_rlhf_harmless_test_file_parses():
    result = read_preferences(HH_TEST)
    recs = result.records
    assert (result.format, len(recs), result.skipped) == ("hh-rlhf", 2312, 0)
    assert sum(p.tie for p in recs) == 0  # no identical transcripts in this file
    empty_chosen = [i + 1 for i, p in enumerate(recs) if p.chosen[-1].content == ""]
    assert empty_chosen == [87, 517, 926, 1104]  # 1-based line numbers
    multi = [i + 1 for i, p in enumerate(recs) if len(p.chosen) > 1 or len(p.rejected) > 1]
    assert multi == [1255, 1689, 1951, 1953, 2037]
    first = recs[0]
    assert first.prompt[0] == user("what are some pranks with a pen i can do?")
    assert len(first.prompt) == 5
    assert first.chosen == [
        assistant(
            "No, sorry!  All of these involve a pen, the point is that you can get funny results by doing "
            "pranks with pens."
        )
    ]
    assert len(read_feedback(HH_TEST).records) == 2 * 2312
    assert read_conversations(HH_TEST, limit=3).records[0].messages == [*first.prompt, *first.chosen]


# ------------------------------------------------------------------------------------ other pairs


def test_ultrafeedback_prompt_scores_and_margin(tmp_path):
    pair = read_preferences(write_jsonl(tmp_path / "uf.jsonl", [ULTRA_ROW])).records[0]
    assert pair.prompt == [user("Name a prime.")]
    assert pair.chosen == [assistant("7")] and pair.rejected == [assistant("9")]
    assert pair.margin == 6.5
    assert pair.metadata == {"prompt_id": "abc123", "score_chosen": 9.0, "score_rejected": 2.5}


def test_preference_standard_and_conversational(tmp_path):
    rows = [
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Rome.", "source": "quiz"},
        {
            "prompt": [
                {"role": "system", "content": "Geo bot."},
                {"role": "user", "content": "Capital of Italy?"},
            ],
            "chosen": [{"role": "assistant", "content": "Rome."}],
            "rejected": [{"role": "assistant", "content": "Paris."}],
            "confidence": 0.8,
            "annotator": "alice",
        },
    ]
    a, b = read_preferences(write_jsonl(tmp_path / "p.jsonl", rows)).records
    assert (a.prompt, a.chosen, a.rejected) == (
        [user("Capital of France?")],
        [assistant("Paris.")],
        [assistant("Rome.")],
    )
    assert a.metadata == {"source": "quiz"}
    assert b.prompt == [system("Geo bot."), user("Capital of Italy?")]
    assert (b.confidence, b.annotator) == (0.8, "alice")


def test_kto_labels_and_conversions(tmp_path):
    rows = [
        {"prompt": "2+2?", "completion": "4", "label": True},
        {"prompt": "2+2?", "completion": "5", "label": 0},
    ]
    path = write_jsonl(tmp_path / "kto.jsonl", rows)
    good, bad = read_feedback(path).records
    assert (good.prompt, good.completion, good.label) == ([user("2+2?")], [assistant("4")], True)
    assert (bad.completion, bad.label) == ([assistant("5")], False)
    # Only the desirable completion is a demonstration for SFT.
    assert [pairs(c.messages) for c in read_conversations(path).records] == [
        [("user", "2+2?"), ("assistant", "4")]
    ]
    write_jsonl(path, [{"prompt": "x", "completion": "y", "label": "yes"}])
    with pytest.raises(DataError, match=r"kto\.jsonl:1: key 'label' must be true or false, got 'yes'"):
        read_feedback(path)


KTO_MESSAGES_ROWS = [
    {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ],
        "label": True,
        "tools": '[{"name": "add", "parameters": {}}]',
    },
    {
        "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}],
        "label": False,
    },
    {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "3+3?"},
            {"role": "assistant", "content": "6"},
        ],
        "label": 1,
    },
]


def test_kto_messages_with_a_label_read_as_kto_with_the_last_assistant_turn_as_completion(tmp_path):
    path = write_jsonl(tmp_path / "kto.jsonl", KTO_MESSAGES_ROWS)
    result = read_records(path)
    assert (result.format, result.kind) == ("kto", "feedback")
    a, b, c = result.records
    assert (a.prompt, a.completion, a.label) == ([system("Be terse."), user("2+2?")], [assistant("4")], True)
    assert a.metadata == {"tools": [{"name": "add", "parameters": {}}]}
    assert (b.prompt, b.completion, b.label) == ([user("2+2?")], [assistant("5")], False)
    assert c.prompt == [user("Hi"), assistant("Hello."), user("3+3?")] and c.completion == [assistant("6")]
    # SFT learns only the desirable records and says how many it left out.
    convs = read_conversations(path)
    assert [m.content for c in convs.records for m in c.messages if m.role == "assistant"] == [
        "4",
        "Hello.",
        "6",
    ]
    assert convs.excluded == 1
    only_bad = write_jsonl(tmp_path / "bad.jsonl", [KTO_MESSAGES_ROWS[1]])
    with pytest.raises(
        DataError, match="all 1 records are labelled undesirable, and SFT learns only desirable"
    ):
        read_conversations(only_bad)
    # A messages file whose label is not a desirability flag stays a conversation file.
    other = write_jsonl(tmp_path / "cat.jsonl", [{**KTO_MESSAGES_ROWS[1], "label": "arithmetic"}])
    assert read_records(other).format == "messages"


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"role": "user", "content": "q"}], "has no assistant turn to label"),
        ([{"role": "assistant", "content": "a"}], "has no prompt before the assistant turn"),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "q2"},
            ],
            "must end with the assistant turn that is labelled",
        ),
    ],
)
def test_kto_messages_without_a_final_assistant_turn_is_malformed(tmp_path, messages, message):
    path = write_jsonl(tmp_path / "kto.jsonl", [KTO_MESSAGES_ROWS[0], {"messages": messages, "label": True}])
    with pytest.raises(DataError, match=rf"kto\.jsonl:2: messages {message}"):
        read_feedback(path)


def test_sft_leaves_out_and_reports_undesirable_kto_records(tmp_path, tiny_tokenizer):
    from alignlab.config import DataConfig
    from alignlab.data.templating import ensure_chat_template
    from alignlab.training.sft import encode_dataset

    ensure_chat_template(tiny_tokenizer)
    path = write_jsonl(tmp_path / "kto.jsonl", KTO_MESSAGES_ROWS)
    logged: list[str] = []
    split = encode_dataset(tiny_tokenizer, DataConfig(path=str(path)), logged.append)
    assert len(split.train) == 2
    assert not any("5" in tiny_tokenizer.decode(ex.input_ids) for ex in split.train)
    assert any("left out 1 record labelled undesirable" in line for line in logged), logged


def test_pairs_convert_to_conversations_and_feedback(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{**SAMPLES["preference"], "id": "p1"}])
    conv = read_conversations(path)
    assert (conv.kind, conv.format) == ("conversation", "preference")
    assert pairs(conv.records[0].messages) == [("user", "Capital of France?"), ("assistant", "Paris.")]
    fb = read_feedback(path).records
    assert [(r.id, r.completion[0].content, r.label) for r in fb] == [
        ("p1:chosen", "Paris.", True),
        ("p1:rejected", "Rome.", False),
    ]
    with pytest.raises(DataError, match="format 'alpaca' .* preference training needs preference records"):
        read_preferences(write_jsonl(tmp_path / "a.jsonl", [SAMPLES["alpaca"]]))


# ------------------------------------------------------------------------------------ file types


def test_gzipped_jsonl_and_json(tmp_path):
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(SAMPLES["kto"]) + "\n")
    with gzip.open(tmp_path / "d.json.gz", "wt", encoding="utf-8") as f:
        json.dump([SAMPLES["alpaca"]], f)
    assert read_feedback(tmp_path / "d.jsonl.gz").records[0].completion == [assistant("4")]
    assert read_conversations(tmp_path / "d.json.gz").records[0].messages[0] == user(
        "Add the numbers.\n\n2 and 3"
    )


def test_parquet_with_nested_messages(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Hi", "tool_call_id": None},
                {"role": "assistant", "content": "Hello", "tool_call_id": None},
            ]
        },
        {
            "messages": [
                {"role": "tool", "content": "42", "tool_call_id": "c9"},
                {"role": "assistant", "content": "It is 42.", "tool_call_id": None},
            ]
        },
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    result = read_conversations(tmp_path / "d.parquet")
    assert result.format == "messages"
    assert result.records[0].messages == [user("Hi"), assistant("Hello")]
    assert result.records[1].messages[0] == Message(role="tool", content="42", tool_call_id="c9")


def test_datasets_save_to_disk_dataset_and_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    train = datasets.Dataset.from_list(
        [SAMPLES["alpaca"], {"instruction": "Hi?", "input": "", "output": "Hello."}]
    )
    test = datasets.Dataset.from_list([{"instruction": "Test?", "input": "", "output": "Yes."}])
    train.save_to_disk(str(tmp_path / "ds"))
    result = read_conversations(tmp_path / "ds")
    assert (result.format, [c.messages[-1].content for c in result.records]) == ("alpaca", ["5", "Hello."])

    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dd"))
    assert len(read_conversations(tmp_path / "dd").records) == 2  # default split: train
    assert pairs(read_conversations(tmp_path / "dd", split="test").records[0].messages) == [
        ("user", "Test?"),
        ("assistant", "Yes."),
    ]
    with pytest.raises(DataError, match="has no split 'validation'; splits: train, test"):
        read_conversations(tmp_path / "dd", split="validation")
    only_user = datasets.Dataset.from_list([{"messages": [{"role": "user", "content": "x"}]}])
    datasets.DatasetDict({"test": only_user}).save_to_disk(str(tmp_path / "dd2"))
    with pytest.raises(DataError, match=r"dd2 \[test\]: record 1: conversation has no assistant turn"):
        read_conversations(tmp_path / "dd2")  # the only split is used when there is no train


def test_datasets_directory_without_datasets_installed_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "state.json").write_text("{}", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(DataError, match=r"needs the datasets package: pip install 'alignlab\[datasets\]'"):
        read_records(tmp_path / "ds")


def test_directory_of_data_files_picks_the_split(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data = tmp_path / "snapshot" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([SAMPLES["kto"]]), data / "train-00000-of-00001.parquet")
    write_jsonl(data / "test.jsonl", [{**SAMPLES["kto"], "completion": "four"}])
    (tmp_path / "snapshot" / "dataset_infos.json").write_text("{}", encoding="utf-8")
    assert read_feedback(tmp_path / "snapshot").records[0].completion == [assistant("4")]
    assert read_feedback(tmp_path / "snapshot", split="test").records[0].completion == [assistant("four")]
    (data / "train-00000-of-00001.parquet").rename(data / "train_prefs-00000-of-00001.parquet")
    with pytest.raises(
        DataError, match="no data file for split 'train'; names found: data, test, train_prefs"
    ):
        read_feedback(tmp_path / "snapshot")


# ------------------------------------------------------------------------------------ errors


def test_malformed_line_in_the_middle_names_file_and_line(tmp_path):
    path = tmp_path / "alpaca.jsonl"
    lines = [
        json.dumps(SAMPLES["alpaca"]),
        "",
        json.dumps({"instruction": "x", "input": ""}),
        "{not json",
        json.dumps(SAMPLES["alpaca"]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert (
        str(err.value)
        == f"{path}:3: missing key 'output' (fix it, or use --skip-invalid to skip such records)"
    )
    result = read_conversations(path, skip_invalid=True)
    assert (len(result.records), result.skipped) == (2, 2)


def test_invalid_json_line_names_its_line(tmp_path):
    path = tmp_path / "alpaca.jsonl"
    path.write_text(json.dumps(SAMPLES["alpaca"]) + "\n\n\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert str(err.value).startswith(
        f"{path}:4: not valid JSON (Expecting property name enclosed in double quotes"
    )


def test_json_array_error_names_the_record(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(
        json.dumps([SAMPLES["alpaca"], SAMPLES["alpaca"], ["not", "an", "object"]]), encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"a\.json: record 3: expected a JSON object, got list"):
        read_conversations(path)


def test_sft_rejects_or_skips_conversations_without_assistant_turn(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "hello?"}]},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
    ]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert (
        str(err.value)
        == f"{path}:1: conversation has no assistant turn; SFT needs one (fix it, or use --skip-invalid to "
        "skip such records)"
    )
    assert read_conversations(path, skip_invalid=True).skipped == 1
    assert len(read_records(path).records) == 2  # only SFT needs an assistant turn


def test_unknown_role_and_unsupported_content_part(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": "narrator", "content": "x"}]}])
    with pytest.raises(DataError, match=r"m\.jsonl:1: messages\[0\]: unknown role 'narrator'"):
        read_records(path)
    write_jsonl(
        path,
        [{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]}],
    )
    with pytest.raises(DataError, match="content part of type 'image_url' is not supported"):
        read_records(path)


def test_unknown_format_lists_the_valid_ones(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [SAMPLES["alpaca"]])
    with pytest.raises(DataError) as err:
        read_records(path, format="openai")
    msg = str(err.value)
    assert msg.startswith("unknown format 'openai'; valid formats: auto, messages, sharegpt, alpaca, dolly")
    assert all(name in msg for name in format_names())


def test_missing_empty_and_undetectable_files(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: no such file or directory"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.jsonl: is empty"):
        read_records(tmp_path / "empty.jsonl")
    (tmp_path / "empty.json").write_text("[]", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.json: is empty"):
        read_records(tmp_path / "empty.json")
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError) as err:
        read_records(path)
    assert "cannot detect the format from the keys ['answer', 'question']" in str(err.value)
    assert "alpaca (instruction, input?, output)" in str(err.value)
    (tmp_path / "d.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="unsupported file type"):
        read_records(tmp_path / "d.csv")


def test_skip_invalid_with_nothing_valid_is_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "x"}\n{oops\n', encoding="utf-8")
    with pytest.raises(
        DataError, match=r"all 2 records are malformed \(first: .*bad\.jsonl:1: missing key 'output'\)"
    ):
        read_conversations(path, skip_invalid=True)


def test_limit_counts_output_records(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [SAMPLES["preference"]] * 4)
    assert len(read_preferences(path, limit=3).records) == 3
    assert len(read_feedback(path, limit=3).records) == 3


# ------------------------------------------------------------------------------------ round trip


def test_own_records_round_trip(tmp_path):
    conv = Conversation(
        messages=[
            system("sys"),
            user("call it"),
            Message(role="assistant", tool_calls=[ToolCall(id="c1", name="f", arguments={"x": 1})]),
            Message(role="tool", content="ok", tool_call_id="c1"),
            assistant(""),
            assistant("done"),
        ],
        id="c-1",
        metadata={"tools": [{"name": "f"}], "source": "lab"},
    )
    pair = PreferencePair(
        prompt=[user("q")], chosen=[assistant("a"), user("more"), assistant("b")], rejected=[assistant("c")],
        tie=True, confidence=0.5, margin=-1.0, annotator="sim-1", reason="verbosity", id="p-1",
        metadata={"k": [1, 2]},
    )  # fmt: skip
    fb = BinaryFeedback(
        prompt=[user("q")], completion=[assistant("a")], label=False, id="f-1", metadata={"s": 1}
    )
    for records, reader, fmt in [
        ([conv], read_conversations, "messages"),
        ([pair, pair.model_copy(update={"tie": False, "confidence": None})], read_preferences, "preference"),
        ([fb], read_feedback, "kto"),
    ]:
        path = tmp_path / f"{fmt}.jsonl"
        write_records(path, records)
        result = reader(path)
        assert result.format == fmt
        assert result.records == records


def test_detect_format_on_our_own_json():
    conv = Conversation(messages=[user("a"), assistant("b")])
    pair = PreferencePair(prompt=[user("a")], chosen=[assistant("b")], rejected=[assistant("c")])
    fb = BinaryFeedback(prompt=[user("a")], completion=[assistant("b")], label=True)
    assert [detect_format(r.to_json()).name for r in (conv, pair, fb)] == ["messages", "preference", "kto"]
