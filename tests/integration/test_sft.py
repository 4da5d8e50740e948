"""SFT end to end on tiny local models: learning, saved HF outputs, LoRA, packing, every architecture."""

import json
import subprocess
import sys

import pytest
from cli_support import read_metrics, run_cli

PAIRS = [
    ("What colour is the sky?", "The sky is blue."),
    ("Name a fruit.", "An apple is a fruit."),
    ("Say hello.", "Hello there!"),
    ("Count to three.", "One, two, three."),
]


def write_messages(path, pairs=PAIRS, system=None):
    with open(path, "w") as f:
        for q, a in pairs:
            msgs = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
            f.write(json.dumps({"messages": msgs}) + "\n")
    return path


def test_sft_learns_memorised_response_and_output_loads_without_alignlab(tmp_path, tiny_model_dir):
    data = write_messages(tmp_path / "train.jsonl")
    out = tmp_path / "out"
    run_cli(
        "sft", "--model", str(tiny_model_dir("llama")), "--data", str(data), "--output", str(out),
        "--max-steps", "80", "optim.lr=3e-3", "train.batch_size=4", "train.save_every=null",
        "train.progress=false", "schedule.kind=constant",
    )
    metrics = read_metrics(out)
    assert metrics[0]["loss"] > 3.0 and metrics[-1]["loss"] < 0.2 * metrics[0]["loss"]
    assert (out / "config.yaml").exists() and (out / "model.safetensors").exists()
    # Greedy decoding of a training prompt reproduces its response, loading with transformers only.
    script = f"""
import sys
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(out)!r})
model = AutoModelForCausalLM.from_pretrained({str(out)!r})
ids = tok.apply_chat_template([{{"role": "user", "content": "Name a fruit."}}], add_generation_prompt=True,
                              return_tensors="pt", return_dict=True)
gen = model.generate(**ids, max_new_tokens=16, do_sample=False)
print(tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
assert "alignlab" not in sys.modules
"""
    text = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert text.strip() == "An apple is a fruit."


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_sft_runs_on_each_architecture(tmp_path, tiny_model_dir, arch):
    from transformers import AutoModelForCausalLM

    data = write_messages(tmp_path / "train.jsonl", system="Be brief.")
    out = tmp_path / arch
    run_cli("sft", "--model", str(tiny_model_dir(arch)), "--data", str(data), "--output", str(out),
            "--max-steps", "3", "train.batch_size=2", "train.progress=false", "optim.lr=1e-3")
    assert len(read_metrics(out)) == 3
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == arch


def test_sft_lora_saves_an_adapter_that_peft_loads(tmp_path, tiny_model_dir):
    from peft import AutoPeftModelForCausalLM

    data = write_messages(tmp_path / "train.jsonl")
    out = tmp_path / "lora"
    run_cli("sft", "--model", str(tiny_model_dir("llama")), "--data", str(data), "--output", str(out),
            "--max-steps", "4", "--lora", "lora.r=4", "train.batch_size=2", "train.progress=false",
            "optim.lr=1e-2")
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    model = AutoPeftModelForCausalLM.from_pretrained(out)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)  # B starts at zero; training moved it


def test_sft_with_packing_trains(tmp_path, tiny_model_dir):
    data = write_messages(tmp_path / "train.jsonl", PAIRS * 4)
    out = tmp_path / "packed"
    run_cli("sft", "--model", str(tiny_model_dir("qwen2")), "--data", str(data), "--output", str(out),
            "--max-steps", "20", "data.packing=true", "data.max_length=64", "train.batch_size=2",
            "train.progress=false", "optim.lr=3e-3", "schedule.kind=constant")
    metrics = read_metrics(out)
    assert metrics[-1]["loss"] < metrics[0]["loss"]


def test_sft_grouped_by_length_trains(tmp_path, tiny_model_dir):
    # Answers from a few tokens to a few dozen, so grouping has lengths to sort.
    pairs = [(q, " ".join([a] * k)) for k in (1, 2, 4, 8) for q, a in PAIRS]
    data = write_messages(tmp_path / "train.jsonl", pairs)
    out = tmp_path / "grouped"
    run_cli("sft", "--model", str(tiny_model_dir("llama")), "--data", str(data), "--output", str(out),
            "--max-steps", "20", "train.group_by_length=true", "train.batch_size=4", "train.save_every=null",
            "train.progress=false", "optim.lr=1e-2", "schedule.kind=constant")
    metrics = read_metrics(out)
    assert len(metrics) == 20 and metrics[-1]["loss"] < 0.5 * metrics[0]["loss"]
