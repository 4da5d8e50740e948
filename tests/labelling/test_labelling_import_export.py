"""Import format and its errors, export per label and aggregated, the command line, lazy imports."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from labelling_support import PASSWORD, Lab, make_pairs
from sqlalchemy import func, select

from alignlab.data.schema import PreferencePair
from alignlab.errors import DataError
from alignlab.labelling import export, queue
from alignlab.labelling.auth import Auth
from alignlab.labelling.models import Assignment, Pair, Round, User


def _pairs(lab: Lab) -> list[Pair]:
    with lab.db() as db:
        return list(db.scalars(select(Pair).order_by(Pair.id)).all())


def test_import_accepts_strings_messages_chosen_rejected_gold_and_metadata(lab):
    records = [
        {"id": "s1", "prompt": "Hi?", "response_a": "Hello.", "response_b": "Go away."},
        {
            "id": 7,
            "prompt": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"}],
            "chosen": {"role": "assistant", "content": "4"},
            "rejected": [{"role": "assistant", "content": "5"}],
            "gold": "a",
            "metadata": {"policy": "v3"},
            "tie": False, "confidence": 0.9, "annotator": "old",  # label fields: accepted, ignored
        },
        {"prompt": "Name a colour.", "chosen": "Red.", "rejected": "Seven."},
    ]  # fmt: skip
    result = lab.import_pairs(records, round_name="policy-v3")
    assert (result.imported, result.gold, result.round_name) == (3, 1, "policy-v3")
    p1, p2, p3 = _pairs(lab)
    assert (p1.ext_id, p1.prompt, p1.response_a, p1.response_b) == (
        "s1", [{"role": "user", "content": "Hi?"}],
        [{"role": "assistant", "content": "Hello."}], [{"role": "assistant", "content": "Go away."}],
    )  # fmt: skip
    assert (p2.ext_id, p2.gold, p2.target, p2.meta) == ("7", "a", None, {"policy": "v3"})
    assert p2.prompt[0] == {"role": "system", "content": "Be terse."}
    assert p2.response_a == [{"role": "assistant", "content": "4"}]
    assert p3.ext_id.startswith("sha256:") and len(p3.ext_id) == len("sha256:") + 16
    assert (p3.response_a[0]["content"], p3.target) == ("Red.", 1)
    # The content-derived id makes the same pair, imported again, a duplicate.
    with pytest.raises(DataError, match=r"pairs.jsonl:1: pair id 'sha256:.*' is already in the database"):
        lab.import_pairs([records[2]])


BAD_LINES = [
    ("{not json", "not valid JSON"),
    ('{"prompt": "q", "response_a": "x", "respnse_b": "y"}', "unknown key(s) respnse_b"),
    ('{"prompt": "q", "response_a": "x", "response_b": "y", "chosen": "z"}',
     "either response_a and response_b"),
    ('{"prompt": "q", "response_a": "x"}', "missing required key 'response_b'"),
    ('{"response_a": "x", "response_b": "y"}', "missing required key 'prompt'"),
    ('{"prompt": "q", "response_a": "x", "response_b": "y", "gold": "c"}', 'gold must be "a" or "b"'),
    ('{"prompt": [{"role": "robot", "content": "q"}], "response_a": "x", "response_b": "y"}',
     "prompt.0.role"),
    ('{"prompt": "q", "response_a": [{"role": "user", "content": "x"}], "response_b": "y"}', "response_a"),
    ('{"prompt": "q", "response_a": "same", "response_b": "same"}', "identical"),
    ('{"id": "p0", "prompt": "q", "response_a": "x", "response_b": "y"}',
     "duplicate id 'p0' (first at pairs.jsonl:1)"),
    ('[1, 2]', "expected a JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_malformed_import_names_file_and_line_and_imports_nothing(lab, line, message):
    good = [json.dumps(p) for p in make_pairs(2)]
    with pytest.raises(DataError) as err:
        from alignlab.labelling import importer

        importer.parse_lines([good[0], "", line, good[1]], "pairs.jsonl")
    assert str(err.value).startswith("pairs.jsonl:3: ") and message in str(err.value)
    assert _pairs(lab) == []


def test_admin_import_page_imports_or_rejects_the_whole_file(lab):
    lab.add_user("root", "admin")
    root = lab.client("root")
    csrf = lab.page(root, "/admin/import").csrf
    good = "\n".join(json.dumps(p) for p in make_pairs(3)).encode()
    ok = root.post(
        "/admin/import",
        data={
            "csrf_token": csrf,
            "round": "policy-v1",
            "labels_per_pair": "2",
            "overlap": "0.34",
            "overlap_labels": "3",
        },
        files={"file": ("pairs.jsonl", good)},
    )
    assert (
        ok.status_code == 200
        and "Imported 3 pairs into round <strong>policy-v1</strong> (0 gold, 1 with overlap)" in ok.text
    )
    assert sorted(p.target for p in _pairs(lab)) == [2, 2, 3]
    bad = b'{"prompt": "q", "response_a": "x", "response_b": "y"}\n{"prompt": "q2"}\n'
    resp = root.post(
        "/admin/import", data={"csrf_token": csrf, "round": "r2"}, files={"file": ("upload.jsonl", bad)}
    )
    assert resp.status_code == 400 and "upload.jsonl:2: give either response_a and response_b" in resp.text
    assert len(_pairs(lab)) == 3
    with lab.db() as db:
        assert db.scalar(select(func.count()).select_from(Round)) == 1  # no empty round "r2" left behind


def _give(lab: Lab, name: str, ext_id: str, choice: str, confidence: int, **extra) -> None:
    """Store one label through the queue functions, choosing in import terms (a / b / tie / both_bad)."""
    with lab.db() as db:
        user = db.scalar(select(User).where(User.name == name))
        pair = db.scalar(select(Pair).where(Pair.ext_id == ext_id))
        pair.assigned += 1
        a = Assignment(pair_id=pair.id, user_id=user.id, swapped=ext_id.endswith("1"), status="pending")
        db.add(a)
        db.flush()
        side = {"a": "right" if a.swapped else "left", "b": "left" if a.swapped else "right"}.get(
            choice, choice
        )
        auth = Auth(user.id, user.name, user.role, "")
        queue.submit_label(db, auth, a.id, queue.LabelInput(choice=side, confidence=confidence, **extra))
        db.commit()


def test_per_label_export_records(lab):
    lab.import_pairs(make_pairs(3, metadata={"policy": "v1"}) + make_pairs(1, prefix="g", gold="b"))
    lab.add_user("ann")
    _give(
        lab,
        "ann",
        "p0",
        "b",
        4,
        reasons=("more_helpful", "more_honest"),
        rationale="B is right.",
        rewrite="Better.",
    )
    _give(lab, "ann", "p1", "tie", 1)
    _give(lab, "ann", "p2", "both_bad", 2)
    _give(lab, "ann", "g0", "a", 3)
    with lab.db() as db:
        records = list(export.export_records(db, "none"))
    for r in records:
        assert r["metadata"].pop("labelled_at").endswith("Z") and r["metadata"].pop("seconds") >= 0
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Question p0?"}]
    assert records[0] == {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "B-text-p0"}],
        "rejected": [{"role": "assistant", "content": "A-text-p0"}],
        "confidence": 1.0,
        "annotator": "ann",
        "reason": "more_helpful,more_honest",
        "id": "p0:ann",
        "metadata": {
            "pair_id": "p0", "round": "r1", "choice": "b", "confidence_level": 4, "shown_left": "a",
            "chosen_position": "right", "rationale": "B is right.", "rewrite": "Better.",
            "source": {"policy": "v1"},
        },
    }  # fmt: skip
    tie, both_bad, gold = records[1:]
    assert tie["tie"] is True and tie["confidence"] == 0.5 and tie["chosen"][0]["content"] == "A-text-p1"
    assert tie["metadata"]["shown_left"] == "b" and tie["metadata"]["chosen_position"] == "right"
    assert both_bad["tie"] is True and both_bad["metadata"]["choice"] == "both_bad"
    assert both_bad["confidence"] == pytest.approx(2 / 3, abs=1e-4)
    assert gold["metadata"]["gold"] == "b" and gold["chosen"][0]["content"] == "A-text-g0"
    assert gold["confidence"] == pytest.approx(5 / 6, abs=1e-4)
    for r in records:
        assert PreferencePair.model_validate(r).to_json() == r


def test_aggregated_exports_majority_and_weighted(lab):
    lab.import_pairs(make_pairs(5), labels_per_pair=3)
    for name in ("ann", "bob", "cy"):
        lab.add_user(name)
    votes = {
        "p0": [("a", 4), ("a", 1), ("b", 4)],  # majority a 2/3; weighted (1 + 1/2 + 0) / 3 = 1/2: tie
        "p1": [
            ("b", 3),
            ("b", 2),
            ("tie", 4),
        ],  # majority b 2/3; weighted (1/6 + 1/3 + 1/2) / 3 = 1/3: b, 2/3
        "p2": [("both_bad", 4)] * 3,  # left out of both
        "p3": [("a", 2), ("b", 2), ("both_bad", 4)],  # majority 1-1: tie; weighted (2/3 + 1/3) / 2: tie
        "p4": [("tie", 1), ("tie", 3), ("a", 4)],  # majority tie; weighted (1/2 + 1/2 + 1) / 3 = 2/3: a
    }
    for ext_id, labels in votes.items():
        for name, (choice, conf) in zip(("ann", "bob", "cy"), labels, strict=True):
            _give(lab, name, ext_id, choice, conf)
    with lab.db() as db:
        majority = {r["id"]: r for r in export.export_records(db, "majority")}
        weighted = {r["id"]: r for r in export.export_records(db, "weighted")}

    def outcome(r):
        return "tie" if r.get("tie") else r["chosen"][0]["content"][0].lower(), r.get("confidence")

    assert {k: outcome(r) for k, r in majority.items()} == {
        "p0": ("a", round(2 / 3, 4)), "p1": ("b", round(2 / 3, 4)), "p3": ("tie", None), "p4": ("tie", None),
    }  # fmt: skip
    assert {k: outcome(r) for k, r in weighted.items()} == {
        "p0": ("tie", None), "p1": ("b", round(float(Fraction(2, 3)), 4)), "p3": ("tie", None),
        "p4": ("a", round(2 / 3, 4)),
    }  # fmt: skip
    meta = majority["p3"]["metadata"]
    assert meta["votes"] == {"a": 1, "b": 1, "tie": 0, "both_bad": 1} and meta["n_labels"] == 3
    assert meta["annotators"] == ["ann", "bob", "cy"] and majority["p3"]["annotator"] == "aggregate:majority"
    with lab.db() as db, pytest.raises(Exception, match="aggregate 'mean'"):
        list(export.export_records(db, "mean"))


def test_export_download_and_round_filter(lab):
    lab.import_pairs(make_pairs(1, prefix="x"), round_name="r1")
    lab.import_pairs(make_pairs(1, prefix="y"), round_name="r2")
    lab.add_user("ann")
    lab.add_user("root", "admin")
    _give(lab, "ann", "x0", "a", 4)
    _give(lab, "ann", "y0", "b", 4)
    root = lab.client("root")
    resp = root.get("/admin/export.jsonl?aggregate=none&round=r2")
    assert (
        resp.status_code == 200
        and resp.headers["content-disposition"] == 'attachment; filename="labels-none-r2.jsonl"'
    )
    lines = [json.loads(x) for x in resp.text.splitlines()]
    assert [r["id"] for r in lines] == ["y0:ann"]
    assert len(root.get("/admin/export.jsonl?aggregate=weighted").text.splitlines()) == 2
    assert root.get("/admin/export.jsonl?aggregate=mean").status_code == 422


def test_exported_file_loads_through_the_preference_reader(lab, tmp_path):
    readers = pytest.importorskip("alignlab.data.readers")
    lab.import_pairs(make_pairs(3))
    lab.add_user("ann")
    _give(lab, "ann", "p0", "b", 4)
    _give(lab, "ann", "p1", "tie", 2)
    _give(lab, "ann", "p2", "a", 1)
    out = tmp_path / "labels.jsonl"
    with lab.db() as db:
        assert export.export_file(db, str(out), "none") == 3
    for fmt in ("preference", "auto"):
        result = readers.read_preferences(out, format=fmt)
        assert result.format == "preference" and len(result.records) == 3
        first, tie, last = result.records
        assert (first.chosen[0].content, first.rejected[0].content, first.annotator) == (
            "B-text-p0",
            "A-text-p0",
            "ann",
        )
        assert tie.tie and not first.tie and last.confidence == 0.5
        assert first.metadata["choice"] == "b" and first.metadata["pair_id"] == "p0"


def test_exported_file_trains_a_reward_model(lab, tmp_path, tiny_model_dir):
    from alignlab.cli import main

    lab.import_pairs(make_pairs(6))
    lab.add_user("ann")
    for i, choice in enumerate(["a", "b", "a", "b", "a", "tie"]):
        _give(lab, "ann", f"p{i}", choice, 3)
    labels = tmp_path / "labels.jsonl"
    with lab.db() as db:
        assert export.export_file(db, str(labels), "none") == 6
    out = tmp_path / "rm"
    with pytest.raises(SystemExit) as e:
        main(["rm", "--model", str(tiny_model_dir("llama")), "--data", str(labels), "--output", str(out),
              "--max-steps", "2", "train.batch_size=2", "train.progress=false"])
    assert e.value.code in (0, None)
    report = json.loads((out / "report.json").read_text())
    assert (out / "config.json").exists() and report


def test_cli_user_add_import_and_export(tmp_path):
    from typer.testing import CliRunner

    from alignlab.labelling.cli import label_app

    runner = CliRunner()
    db = str(tmp_path / "labels.sqlite")
    added = runner.invoke(
        label_app, ["user", "add", "ann", "--role", "labeller", "--db", db], input=PASSWORD + "\n"
    )
    assert added.exit_code == 0, added.output
    dup = runner.invoke(
        label_app, ["user", "add", "ann", "--role", "admin", "--db", db], input=PASSWORD + "\n"
    )
    assert dup.exit_code == 2 and "already exists" in dup.output
    listed = runner.invoke(label_app, ["user", "list", "--db", db])
    assert listed.output.strip() == "ann\tlabeller\tactive"

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(p) for p in make_pairs(4)) + "\n")
    done = runner.invoke(
        label_app, ["import", str(pairs), "--db", db, "--round", "v1", "--labels-per-pair", "2"]
    )
    assert done.exit_code == 0 and "imported 4 pairs into round v1 (0 gold, 0 overlap)" in done.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "q", "response_a": "x", "response_b": "y"}\n{"prompt": "q", "response_a": 3}\n'
    )
    failed = runner.invoke(label_app, ["import", str(bad), "--db", db])
    assert failed.exit_code == 2 and f"{bad}:2:" in failed.output

    lab = Lab(tmp_path)  # the same database file, now through the app
    assert len(_pairs(lab)) == 4
    _give(lab, "ann", "p3", "a", 4)
    out = tmp_path / "out.jsonl"
    exported = runner.invoke(label_app, ["export", str(out), "--db", db, "--aggregate", "majority"])
    assert exported.exit_code == 0 and "wrote 1 records" in exported.output
    [line] = out.read_text().splitlines()
    assert json.loads(line)["id"] == "p3" and json.loads(line)["confidence"] == 1.0


HH_TEST = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "hh-rlhf"
    / "harmless-base"
    / "test.jsonl.gz"
)
HH_ROW = {
    "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\n"
              "Assistant: Mix flour, water, yeast.",
    "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant: No idea.",
}
ULTRA_ROW = {
    "prompt": "Name a prime.", "prompt_id": "abc123", "score_chosen": 9.0, "score_rejected": 2.5,
    "chosen": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}],
    "rejected": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "9"}],
}  # fmt: skip
TRL_ROW = {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Rome.", "id": "q1"}


@pytest.mark.parametrize(
    ("row", "fmt", "prompt", "a", "b"),
    [
        (HH_ROW, "hh-rlhf", ["Hi", "Hello!", "How do I bake bread?"], "Mix flour, water, yeast.", "No idea."),
        (ULTRA_ROW, "ultrafeedback", ["Name a prime."], "7", "9"),
        (TRL_ROW, "preference", ["Capital of France?"], "Paris.", "Rome."),
    ],
)
def test_import_reads_the_preference_formats_rm_and_dpo_read(lab, tmp_path, row, fmt, prompt, a, b):
    from alignlab.labelling import importer

    path = tmp_path / "pairs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    for given in ("auto", fmt):
        parsed = importer.parse_file(str(path), given)
        assert parsed.format == fmt and parsed.skipped == 0
        [pair] = parsed.pairs
        assert [m["content"] for m in pair.prompt] == prompt
        assert (pair.response_a, pair.response_b) == (
            [{"role": "assistant", "content": a}],
            [{"role": "assistant", "content": b}],
        )
    assert pair.ext_id == ("q1" if fmt == "preference" else pair.ext_id) and pair.ext_id
    if fmt == "ultrafeedback":
        assert pair.meta == {"prompt_id": "abc123", "score_chosen": 9.0, "score_rejected": 2.5}
    with lab.db() as db:
        assert importer.import_pairs(db, parsed.pairs, str(path), "r1").imported == 1
        db.commit()


def test_import_of_a_preference_file_leaves_out_identical_and_repeated_pairs_and_names_bad_formats(tmp_path):
    from alignlab.labelling import importer

    same = {"chosen": HH_ROW["chosen"], "rejected": HH_ROW["chosen"]}
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (HH_ROW, same, HH_ROW)))
    parsed = importer.parse_file(str(path))
    assert (len(parsed.pairs), parsed.skipped, parsed.format) == (1, 2, "hh-rlhf")
    with pytest.raises(
        DataError,
        match=r"unknown format 'sharegpt'; valid formats: auto, pairs, hh-rlhf, ultrafeedback, preference",
    ):
        importer.parse_file(str(path), "sharegpt")
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(
        DataError,
        match=r"cannot detect the format.*prompt, response_a, response_b.*docs/labelling-formats.md",
    ):
        importer.parse_file(str(odd))
    with pytest.raises(DataError, match=r"has format 'alpaca'"):
        importer.parse_file(str(write_alpaca(tmp_path)), "auto")


def write_alpaca(tmp_path):
    path = tmp_path / "alpaca.jsonl"
    path.write_text(json.dumps({"instruction": "Add.", "input": "2 and 3", "output": "5"}) + "\n")
    return path


def test_cli_imports_the_real_hh_rlhf_file_and_its_help_names_formats_not_modules(tmp_path):
    from typer.testing import CliRunner

    from alignlab.labelling.cli import label_app

    runner = CliRunner()
    shown = runner.invoke(label_app, ["import", "--help"], terminal_width=200).output
    assert (
        "alignlab.labelling.importer" not in shown and "hh-rlhf" in shown and "labelling-formats.md" in shown
    )
    if not HH_TEST.exists():
        pytest.skip(f"shared data folder absent ({HH_TEST} not found)")
    db = str(tmp_path / "labels.sqlite")
    done = runner.invoke(label_app, ["import", str(HH_TEST), "--db", db, "--round", "harmless"])
    assert done.exit_code == 0, done.output
    assert (
        "imported 2312 pairs into round harmless (0 gold, 0 overlap)" in done.output
        and "hh-rlhf" in done.output
    )


def test_importing_the_cli_module_does_not_load_the_web_stack():
    code = (
        "import sys, alignlab.labelling.cli, alignlab.feedback.agreement\n"
        "heavy = [m for m in ('fastapi', 'starlette', 'sqlalchemy', 'argon2', 'uvicorn', 'jinja2')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing alignlab.labelling.cli pulled in: {out}"
