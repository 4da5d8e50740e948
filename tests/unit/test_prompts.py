"""RL prompt files: `prompt` (text or messages), `messages` cut after the last user turn, hh-rlhf and
UltraFeedback pairs, extra fields kept, and clear errors for files without prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignlab.data.prompts import read_prompts
from alignlab.errors import DataError

SHARED_HH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-rlhf" / "harmless-base" / \
    "test.jsonl.gz"


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def turns(record) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in record.messages]


def test_prompt_text_prompt_messages_and_conversations_cut_after_the_last_user_turn(tmp_path):
    f = jsonl(tmp_path / "p.jsonl", [
        {"prompt": "Name a river.", "answer": "Osk", "id": 7},
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]},
        {"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                      {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}],
         "gold": {"answer": "x"}},
    ])
    a, b, c = read_prompts(f)
    assert turns(a) == [("user", "Name a river.")] and dict(a.fields) == {"answer": "Osk", "id": 7}
    assert a.where == f"{f}:1" and a.text == "Name a river."
    assert turns(b) == [("system", "Be brief."), ("user", "Hi")] and dict(b.fields) == {}
    assert turns(c) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2")] and c.text == "Q2"
    assert dict(c.fields) == {"gold": {"answer": "x"}}
    with_system = read_prompts(f, system_prompt="You help.", limit=2)
    assert [turns(r)[0] for r in with_system] == [("system", "You help."), ("system", "Be brief.")]


def test_hh_rlhf_and_ultrafeedback_pairs_give_their_shared_prompt(tmp_path):
    hh = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit."
    uf_prompt = [{"role": "user", "content": "Write a haiku."}]
    f = jsonl(tmp_path / "pairs.jsonl", [
        {"chosen": hh + "\n\nAssistant: An apple.", "rejected": hh + "\n\nAssistant: No."},
        {"chosen": [*uf_prompt, {"role": "assistant", "content": "Snow falls."}],
         "rejected": [*uf_prompt, {"role": "assistant", "content": "No."}], "score_chosen": 8.0},
    ])
    first, second = read_prompts(f)
    assert turns(first) == [("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a fruit.")]
    assert turns(second) == [("user", "Write a haiku.")] and dict(second.fields) == {"score_chosen": 8.0}


def test_json_arrays_and_parquet_files(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = [{"prompt": "One?", "k": 1}, {"prompt": "Two?", "k": 2}]
    (tmp_path / "p.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    for name in ("p.json", "p.parquet"):
        got = read_prompts(tmp_path / name)
        assert [(r.text, r.fields["k"]) for r in got] == [("One?", 1), ("Two?", 2)]


def test_a_file_without_prompts_is_one_clear_error_naming_the_file_and_the_keys(tmp_path):
    f = jsonl(tmp_path / "texts.jsonl", [{"text": "a document"}, {"text": "another"}])
    with pytest.raises(DataError) as err:
        read_prompts(f)
    msg = str(err.value)
    assert msg.startswith(f"{f}: holds no prompts: expected `prompt`") and "`messages`" in msg
    assert "hh-rlhf" in msg and "['text']" in msg and "\n" not in msg
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.jsonl: holds no prompts: it is empty"):
        read_prompts(empty)


def test_a_malformed_record_names_its_line_unless_skipped(tmp_path):
    f = jsonl(tmp_path / "p.jsonl", [{"prompt": "ok"}, {"messages": [{"role": "assistant", "content": "x"}]},
                                    {"prompt": "fine"}])
    with pytest.raises(DataError, match=r"p.jsonl:2: messages has no user turn.*skip_invalid"):
        read_prompts(f)
    assert [r.text for r in read_prompts(f, skip_invalid=True)] == ["ok", "fine"]


def test_the_published_hh_rlhf_file_gives_prompts_that_end_with_a_user_turn():
    if not SHARED_HH.exists():
        pytest.skip(f"the shared public data folder is absent ({SHARED_HH})")
    prompts = read_prompts(SHARED_HH, limit=200)
    assert len(prompts) == 200
    assert all(r.messages[-1].role == "user" and r.messages[0].role == "user" for r in prompts)
