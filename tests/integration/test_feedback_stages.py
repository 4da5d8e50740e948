"""`alignlab cai` and `alignlab rlaif` through the command line: tiny in-process models and a local
OpenAI-compatible endpoint as backends, artefacts for sft / dpo, audits, resume, and bad input."""

from __future__ import annotations

import json

import pytest
from cli_support import fail, run_cli
from openai_stub import MODEL, StubServer, free_port

from alignlab.feedback.constitution import shipped_constitution
from alignlab.io import read_jsonl
from records import pair, write_jsonl

LAB = shipped_constitution("lab").content_hash()
QUICK = ["train.progress=false", "train.save_every=null", "train.batch_size=2"]


def summary(out) -> dict:
    return json.loads((out / "stage.json").read_text())["summary"]


@pytest.fixture
def pairs_file(tmp_path):
    """Four preference pairs; the chosen response is the longer one in three (the stub prefers length)."""
    rows = [pair(f"q{i}", good, bad, id=f"p{i}") for i, (good, bad) in enumerate(
        [("a long and careful answer", "no"), ("it is the river Osk, as the map shows", "Osk?"),
         ("short", "a much longer wrong answer"), ("yes, it is blue and small", "blue")])]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


def test_rlaif_with_an_in_process_judge_writes_pairs_an_audit_and_the_agreement(tmp_path, tiny_model_dir,
                                                                                pairs_file):
    out = tmp_path / "rlaif"
    run_cli("rlaif", "--pairs", pairs_file, "--judge", tiny_model_dir("llama"), "--output", out,
            "--constitution", "lab", "tie_band=0.0")
    labelled = read_jsonl(out / "pairs.jsonl")
    audit = read_jsonl(out / "audit.jsonl")
    assert len(labelled) == len(audit) == 4
    for p, row in zip(labelled, audit, strict=True):
        # The soft label is read off P(A) / P(B) of the in-process model, for each order.
        assert p["metadata"]["label_source"] == "scorer" and 0.5 <= p["confidence"] <= 1
        assert p["metadata"]["constitution"] == row["constitution"] == LAB
        assert [o["order"] for o in row["orders"]] == ["AB", "BA"] and row["id"] == p["id"]
    agreement = json.loads((out / "agreement.json").read_text())
    # The input file's own labels serve as the reference: every pair matched, accuracy with its n.
    assert agreement["ai_vs_input_labels"]["matched"] == 4
    assert agreement["ai_vs_input_labels"]["accuracy"]["n"] == 4
    assert summary(out)["labelled"] == 4 and summary(out)["ai_vs_input_labels/accuracy"]["n"] == 4


def test_swapping_a_and_b_through_the_stage_flips_the_raw_judgement_and_keeps_the_label(tmp_path):
    """The same pairs with their responses in the other order: each order's raw answer flips, the
    combined label (which response won, and how surely) does not."""
    rows = [pair("q0", "a long and careful answer", "no", id="p0"),
            pair("q1", "short", "a much longer answer", id="p1")]
    swapped = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    files = {"as_given": write_jsonl(tmp_path / "a.jsonl", rows),
             "swapped": write_jsonl(tmp_path / "b.jsonl", swapped)}
    with StubServer(bias=1.5) as url:  # leans to (A) by 1.5 characters; the length gaps are larger
        for name, path in files.items():
            run_cli("rlaif", "--pairs", path, "--judge", url, "--output", tmp_path / name)
    audits = {name: read_jsonl(tmp_path / name / "audit.jsonl") for name in files}
    results = {name: read_jsonl(tmp_path / name / "pairs.jsonl") for name in files}
    rows = zip(audits["as_given"], audits["swapped"], results["as_given"], results["swapped"], strict=True)
    for given, swap, p, q in rows:
        content_first = ["Answer: A", "Answer: B"]  # the judge followed the content, not the position
        expected = content_first if given["label"] == "first" else content_first[::-1]
        assert [o["reply"] for o in given["orders"]] == expected
        assert [o["reply"] for o in swap["orders"]] == [o["reply"] for o in given["orders"]][::-1]
        assert swap["p_first"] == pytest.approx(1 - given["p_first"])
        assert p["chosen"] == q["chosen"] and p["confidence"] == pytest.approx(q["confidence"])
        assert p["metadata"]["label_source"] == "logprobs"


def test_rlaif_against_an_endpoint_end_to_end_resumes_from_its_cache_and_feeds_dpo(
    tmp_path, capsys, tiny_model_dir, pairs_file
):
    out = tmp_path / "rlaif"
    args = ["rlaif", "--pairs", pairs_file, "--output", out, "--reference", pairs_file,
            "judge.endpoint.max_retries=0"]
    port = free_port()
    with StubServer(port=port, fail_marker="Osk") as url:  # the pair about the river Osk fails at the server
        err = fail(capsys, *args, "--judge", url)
    assert "1 of 4 judgements failed" in err and "run the same command again" in err
    cached = sorted(p.name for p in (out / "http_cache").rglob("*.json"))
    assert len(cached) == 6 and not (out / "pairs.jsonl").exists()
    # The endpoint is down: one clear line, exit 2, and the cache and audit stay as they were.
    err = fail(capsys, *args, "--judge", f"http://127.0.0.1:{port}/v1")
    assert f"cannot connect to http://127.0.0.1:{port}/v1/models" in err and "start the server" in err
    assert sorted(p.name for p in (out / "http_cache").rglob("*.json")) == cached
    with StubServer(port=port) as url:
        run_cli(*args, "--judge", url)
    s = summary(out)
    # Only the two orders of the failed pair were asked again; the rest came from the audit and cache.
    assert s["requests_sent"] == 2 and s["resumed"] == 3 and s["labelled"] == 4
    assert s["judge"] == f"{MODEL}@{url}" and s["label_sources"] == {"logprobs": 8}
    assert s["ai_vs_reference/accuracy"] == {"value": 0.75, "low": pytest.approx(0.3006, abs=1e-3),
                                             "high": pytest.approx(0.9544, abs=1e-3), "n": 4}
    labelled = read_jsonl(out / "pairs.jsonl")
    assert {p["annotator"] for p in labelled} == {f"{MODEL}@{url}"}
    run_cli("dpo", "--model", tiny_model_dir("llama"), "--data", out / "pairs.jsonl",
            "--output", tmp_path / "dpo", "--max-steps", "1", *QUICK)
    assert (tmp_path / "dpo" / "model.safetensors").exists()


def test_cai_writes_sft_data_and_an_audit_with_the_constitution_hash(tmp_path, tiny_model_dir):
    def turn(role, text):
        return {"role": role, "content": text}

    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"id": "a", "messages": [turn("system", "Be brief."), turn("user", "hello")]},
        {"id": "b", "prompt": "What is the capital of France?"},
        {"id": "c", "messages": [turn("user", "hi"), turn("assistant", "dropped")]},
    ])
    out = tmp_path / "cai"
    server = StubServer()
    with server as url:  # the policy samples at temperature 1, the critic greedily
        run_cli("cai", "--model", tiny_model_dir("llama"), "--prompts", prompts, "--critic", url,
                "--output", out, "--constitution", "lab", "--rounds", "2", "max_new_tokens=8",
                "temperature=1.0", "critic_temperature=0")
    assert {b["temperature"] for b in server.requests} == {0.0}
    convs = read_jsonl(out / "sft.jsonl")
    steps = read_jsonl(out / "audit.jsonl")
    assert [c["id"] for c in convs] == ["a", "b", "c"] and len(steps) == 6
    assert convs[2]["messages"][-2:] == [{"role": "user", "content": "hi"},
                                        {"role": "assistant", "content": steps[-1]["revision"]}]
    assert all(r["constitution"] == LAB for r in steps)
    assert all(c["metadata"]["constitution"] == LAB for c in convs)
    # The critic is the endpoint: critiques and revisions are its replies, rounds chained.
    assert all(r["critique"].startswith("Revised:") for r in steps)
    by_prompt = {r["id"]: [] for r in steps}
    for r in steps:
        by_prompt[r["id"]].append(r)
    assert all(rs[1]["response"] == rs[0]["revision"] for rs in by_prompt.values())
    assert summary(out)["revised"] == 3 and summary(out)["requests_sent"] == 12
    run_cli("sft", "--model", tiny_model_dir("llama"), "--data", out / "sft.jsonl",
            "--output", tmp_path / "sft", "--max-steps", "1", *QUICK)
    assert (tmp_path / "sft" / "model.safetensors").exists()


def test_an_unreadable_constitution_names_the_file_and_the_key(tmp_path, capsys, pairs_file):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprinciples:\n  - id: a\n    comparison: Which?\n    colour: red\n")
    err = fail(capsys, "rlaif", "--pairs", pairs_file, "--judge", "http://127.0.0.1:9/v1", "--output",
               tmp_path / "o", "--constitution", bad)
    assert "config key 'constitution'" in err and f"{bad}:5" in err and "principles.0.colour" in err
    err = fail(capsys, "rlaif", "--pairs", pairs_file, "--judge", "http://127.0.0.1:9/v1", "--output",
               tmp_path / "o2", "--constitution", tmp_path / "missing.yaml")
    assert "missing.yaml" in err and "not found" in err


def test_a_constitution_without_comparisons_cannot_label(tmp_path, capsys, pairs_file):
    only_critique = tmp_path / "c.json"
    only_critique.write_text(json.dumps({"harm": {"prompt": ["Is it harmful?"], "edit_request": "Fix it."}}))
    err = fail(capsys, "rlaif", "--pairs", pairs_file, "--judge", "http://127.0.0.1:9/v1", "--output",
               tmp_path / "o", "--constitution", only_critique)
    assert "no principle has a comparison question" in err


def recipe(tmp_path, name: str, stage: dict) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({"name": name, "stages": {"label": stage}}))  # JSON is YAML
    return str(path)


def test_a_recipe_whose_judge_is_down_stops_with_one_line_keeps_the_cache_and_resumes(tmp_path, capsys,
                                                                                      pairs_file):
    """Through `alignlab run`: the rlaif stage's endpoint fails one pair, then is down; each stop is one
    line and exit 2, the stage directory keeps its audit and cache, and the run resumes the stage once
    the endpoint is back, asking only for what failed."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    path = recipe(tmp_path, "ai-labels", {"kind": "rlaif", "config": {
        "pairs": str(pairs_file), "judge": {"path": url, "endpoint": {"max_retries": 0}}}})
    run = ["run", path, "--run-dir", tmp_path / "run"]
    with StubServer(port=port, fail_marker="Osk"):
        err = fail(capsys, *run)
    assert "1 of 4 judgements failed" in err and "run the same command again" in err
    (stage,) = (tmp_path / "run").glob("label-*")
    cached = sorted(p.name for p in (stage / "http_cache").rglob("*.json"))
    assert len(cached) == 6 and len(read_jsonl(stage / "audit.jsonl")) == 4
    err = fail(capsys, *run)  # nothing listens on the port now
    assert f"cannot connect to {url}/models" in err and "start the server" in err
    assert sorted(p.name for p in (stage / "http_cache").rglob("*.json")) == cached
    with StubServer(port=port):
        run_cli(*run)
    s = summary(stage)
    assert s["requests_sent"] == 2 and s["resumed"] == 3 and s["labelled"] == 4


def test_a_recipe_with_an_unreadable_constitution_names_the_stage_file_and_key(tmp_path, capsys, pairs_file):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprinciples:\n  - id: a\n    comparison: Which?\n    colour: red\n")
    for kind, config in (("rlaif", {"pairs": str(pairs_file), "judge": {"path": "http://127.0.0.1:9/v1"}}),
                         ("cai", {"model": {"path": str(tmp_path)}, "prompts": str(pairs_file)})):
        path = recipe(tmp_path, kind, {"kind": kind, "config": {**config, "constitution": str(bad)}})
        err = fail(capsys, "run", path, "--run-dir", tmp_path / kind)
        assert "config key 'stages.label.config.constitution'" in err and f"{bad}:5" in err
        assert "principles.0.colour" in err


def test_cai_with_its_critic_down_is_one_line_and_exit_2(tmp_path, capsys, tiny_model_dir):
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"id": "a", "prompt": "hello"}])
    url = f"http://127.0.0.1:{free_port()}/v1"
    err = fail(capsys, "cai", "--model", tiny_model_dir("llama"), "--prompts", prompts, "--critic", url,
               "--output", tmp_path / "cai", "max_new_tokens=4")
    assert f"cannot connect to {url}/models" in err and "start the server" in err
