"""Saving a stage's model: gathered weights (FSDP2, ZeRO-3) are written as the model itself would be."""

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from alignlab.modeling.saving import save_model_artefacts, without_tied_copies


def test_a_gathered_state_dict_of_a_tied_model_is_saved_without_a_second_embedding(tmp_path, tiny_model_dir):
    source = tiny_model_dir("llama")  # ties lm_head.weight to model.embed_tokens.weight
    model = AutoModelForCausalLM.from_pretrained(source)
    tok = AutoTokenizer.from_pretrained(source)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    # What a full-state-dict gather returns: every key, each tensor with storage of its own.
    gathered = {k: v.clone() for k, v in model.state_dict(keep_vars=False).items()}
    gathered["lm_head.weight"] = gathered["model.embed_tokens.weight"].clone()
    own, from_gathered = tmp_path / "own", tmp_path / "gathered"
    own.mkdir(), from_gathered.mkdir()
    save_model_artefacts(model, tok, own)
    save_model_artefacts(model, tok, from_gathered, state_dict=gathered)
    written_own, written = (
        load_file(own / "model.safetensors"),
        load_file(from_gathered / "model.safetensors"),
    )
    assert "lm_head.weight" not in written and written.keys() == written_own.keys()
    reloaded = AutoModelForCausalLM.from_pretrained(from_gathered)
    assert reloaded.lm_head.weight is reloaded.model.embed_tokens.weight
    for k, v in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[k], v, rtol=0, atol=0)


def test_untied_keys_are_kept():
    model = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert without_tied_copies(model, state).keys() == {"0.weight", "1.weight"}
    model[1].weight = model[0].weight  # now tied: the later name is the alias
    assert without_tied_copies(model, state).keys() == {"0.weight"}
