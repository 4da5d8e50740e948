"""SFT, reward model and DPO on architectures beyond the three the other tests use.

Each is a random two-layer model of that architecture, built from its transformers config and
saved like a downloaded checkpoint; the stages load it as they load any model.
"""

import json

import pytest
import torch
from cli_support import run_cli

CONFIGS = {
    "mistral": {},
    "gemma2": {"head_dim": 8, "final_logit_softcapping": 30.0},  # soft-capped logits
    "phi3": {},
    "gpt_neox": {"num_key_value_heads": None},
    "olmo2": {},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch_data")
    sft, pref = root / "sft.jsonl", root / "pref.jsonl"
    sft.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Count to {i}."},
                                                    {"role": "assistant",
                                                     "content": " ".join(map(str, range(i)))}]})
                           + "\n" for i in range(2, 10)))
    pref.write_text("".join(json.dumps({"prompt": f"Count to {i}.", "chosen": " ".join(map(str, range(i))),
                                        "rejected": "No."}) + "\n" for i in range(2, 10)))
    return sft, pref


def save_model(arch: str, tokenizer_dir, out, extra: dict | None = None) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    sizes = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    kwargs = {k: v for k, v in {**sizes, **(extra or {})}.items() if v is not None}
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.for_model(arch, **kwargs)).save_pretrained(out)
    tok.save_pretrained(out)


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_sft_rm_and_dpo_run_on_the_architecture(arch, tmp_path, tiny_model_dir, data):
    sft_data, pref_data = data
    model = tmp_path / arch
    save_model(arch, tiny_model_dir("llama"), model,
               CONFIGS[arch])  # the llama fixture's tokenizer and template
    common = ["--max-steps", "2", "train.batch_size=4", "train.progress=false"]
    run_cli("sft", "--model", model, "--data", sft_data, "--output", tmp_path / "sft", *common)
    run_cli("rm", "--model", model, "--data", pref_data, "--output", tmp_path / "rm", *common)
    run_cli("dpo", "--model", tmp_path / "sft", "--data", pref_data, "--output", tmp_path / "dpo", *common)
    for stage in ("sft", "rm", "dpo"):
        assert (tmp_path / stage / "model.safetensors").exists() and (
            tmp_path / stage / "stage.json"
        ).exists()
    report = json.loads((tmp_path / "rm" / "report.json").read_text())
    assert 0.0 <= report["accuracy"] <= 1.0


def test_a_reward_model_on_an_architecture_without_a_classification_head_says_what_to_do(
    tmp_path, tiny_model_dir, data, capsys
):
    from alignlab.cli import main

    save_model("granite", tiny_model_dir("llama"),
               tmp_path / "granite")  # no GraniteForSequenceClassification
    with pytest.raises(SystemExit) as e:
        main(["rm", "--model", str(tmp_path / "granite"), "--data", str(data[1]), "--output",
              str(tmp_path / "rm")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no sequence-classification head for this architecture" in err and "Llama" in err
