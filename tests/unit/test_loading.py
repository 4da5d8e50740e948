"""One model builder honours every ModelConfig field; inference runs in eval mode and restores it."""

import json

import pytest
import torch

from alignlab.config import LoRAConfig, ModelConfig
from alignlab.modeling.inference import batch_indices, inference_mode, run_batches
from alignlab.modeling.loading import load_model, load_model_tokenizer, load_options


def test_load_options_carry_every_model_field_but_the_path():
    assert set(load_options(ModelConfig(path="m"))) == set(ModelConfig.model_fields) - {"path"}


def test_a_bare_string_is_a_model_path():
    assert ModelConfig.model_validate("some/dir") == ModelConfig(path="some/dir")


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_load_model_applies_attention_dtype_and_lora(tiny_model_dir, attn):
    cfg = ModelConfig(path=str(tiny_model_dir("llama")), attn_implementation=attn, dtype="bfloat16",
                      device="cpu")
    model = load_model(cfg, LoRAConfig(enabled=True, r=2))
    assert model.config._attn_implementation == attn
    assert next(model.parameters()).dtype == torch.bfloat16
    assert hasattr(model, "peft_config") and any("lora_" in n for n, _ in model.named_parameters())
    assert not hasattr(load_model(cfg), "peft_config")  # no LoRA section, or a disabled one: plain model


def test_lora_adapters_start_from_the_seed_whatever_ran_before(tiny_model_dir):
    cfg, lora = ModelConfig(path=str(tiny_model_dir("llama")), device="cpu"), LoRAConfig(enabled=True, r=2)
    first = load_model(cfg, lora, seed=3)
    torch.rand(100)  # other work moves the global RNG between two runs in one process
    same, other = load_model(cfg, lora, seed=3), load_model(cfg, lora, seed=4)
    adapters = [{n: p for n, p in m.named_parameters() if "lora_A" in n} for m in (first, same, other)]
    assert adapters[0] and all(torch.equal(p, adapters[1][n]) for n, p in adapters[0].items())
    assert not all(torch.equal(p, adapters[2][n]) for n, p in adapters[0].items())


def test_reward_models_honour_the_attention_setting(tiny_model_dir):
    from alignlab.modeling.reward_model import build_reward_model

    cfg = ModelConfig(path=str(tiny_model_dir("qwen2")), attn_implementation="eager", device="cpu")
    rm = build_reward_model(cfg.path, num_members=2, **load_options(cfg))
    assert rm.members[0].config._attn_implementation == "eager"


def test_model_tokenizer_gets_a_chat_template_only_when_asked(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    bare = AutoTokenizer.from_pretrained(tiny_model_dir("llama"))
    bare.chat_template = None
    bare.save_pretrained(tmp_path)
    assert load_model_tokenizer(ModelConfig(path=str(tmp_path))).chat_template is not None
    assert load_model_tokenizer(ModelConfig(path=str(tmp_path)), chat_template=False).chat_template is None


def test_inference_mode_restores_the_mode_and_computes_no_gradient():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model.train()
    with inference_mode(model):
        assert not model.training and not model(torch.ones(1, 2)).requires_grad
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError), inference_mode(model):
        raise RuntimeError("restored even on error")
    assert not model.training


def test_batches_keep_order_or_go_shortest_first_and_results_find_their_items():
    assert batch_indices(5, 2) == [[0, 1], [2, 3], [4]]
    assert batch_indices([3, 1, 2, 1], 2, by_length=True) == [[1, 3], [2, 0]]
    model = torch.nn.Linear(1, 1)
    items = [[4.0], [1.0], [3.0]]
    out = run_batches(
        model, items, lambda b: {"x": torch.tensor(b)}, lambda m, b: b["x"][:, 0].tolist(),
        batch_size=2, length=lambda it: int(it[0]),
    )
    assert out == [([1, 2], [1.0, 3.0]), ([0], [4.0])]


def test_an_adapter_trained_on_an_adapter_names_it_and_loads_on_it(tiny_model_dir, tmp_path, monkeypatch):
    """`sft --lora` then `dpo --model <that adapter> --lora`: the second adapter was trained on base +
    first adapter (merged), so it must name the first, by a path that resolves from any directory,
    and load on top of it; it named the bare base, by the path as typed."""
    import os

    import torch

    from alignlab.modeling.loading import apply_lora, load_causal_lm

    monkeypatch.chdir(tmp_path)
    ids = torch.tensor([[1, 5, 9, 13, 17]])

    def trained_adapter(model_path: str, out: str, seed: int):
        model = apply_lora(load_causal_lm(model_path), r=2, alpha=4, dropout=0.0,
                           target_modules=["q_proj", "v_proj"], seed=seed)
        with torch.no_grad():  # lora_B starts at zero: make the adapter change the model
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.5)
        model.save_pretrained(out)
        return model

    trained_adapter(os.path.relpath(tiny_model_dir("llama"), tmp_path), "a1", seed=1)
    second = trained_adapter("a1", "a2", seed=2)
    with torch.no_grad():
        expected = second(ids).logits
    assert json.loads((tmp_path / "a2" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        str((tmp_path / "a1").resolve())
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with torch.no_grad():
        loaded = load_causal_lm(str(tmp_path / "a2"))(ids).logits
    torch.testing.assert_close(loaded, expected)
