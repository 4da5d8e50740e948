"""The RL forward pass over left-padded prompt + response rows: response log-probs equal the sampling
log-probs and a per-row forward (Llama and absolute-position GPT-2), values are aligned with the
response tokens, critics start from the policy (zero head) or the reward model (its mean score), and
the update step composes the policy and value losses the loop's way."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from alignlab.data.templating import encode_prompt
from alignlab.generation.base import SamplingParams
from alignlab.generation.hf import HFGenerator
from alignlab.losses.aggregation import loss_item_count
from alignlab.losses.policy import clipped_value_loss, ppo_policy_loss
from alignlab.modeling.responses import response_logits, response_logps
from alignlab.modeling.value_model import (
    critic_from_policy,
    critic_from_reward_model,
    is_critic_dir,
    load_critic,
    token_values,
)
from alignlab.training.rl_step import PolicyCritic, UpdateSettings, make_rl_step, rl_item_count
from alignlab.training.rollouts import RolloutBatch

PROMPTS = [[{"role": "user", "content": "Hello! How can I help you today?"}],
           [{"role": "user", "content": "The sky."}],
           [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the "
                                                                                    "capital of France?"}]]


def rollout_of(path, n=2, temperature=1.0):
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
    ids = [encode_prompt(tok, p) for p in PROMPTS]
    rollout = HFGenerator(model, tok).generate_ids(ids, SamplingParams(8, temperature, n=n, seed=3))
    return tok, model, rollout


def per_row_logps(model, rollout, temperature):
    """Each row alone, without padding: log-softmax(logits / T) of its response tokens."""
    out = torch.zeros_like(rollout.logprobs)
    for i in range(rollout.prompt_ids.shape[0]):
        prompt = rollout.prompt_ids[i][rollout.prompt_mask[i] == 1]
        length = int(rollout.response_mask[i].sum())
        seq = torch.cat([prompt, rollout.response_ids[i, :length]])[None]
        with torch.no_grad():
            logp = torch.log_softmax(model(seq).logits[0].float() / temperature, -1)
        p = len(prompt)
        out[i, :length] = logp[p - 1 : p - 1 + length].gather(1, seq[0, p:, None])[:, 0]
    return out


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_response_logps_equal_the_sampling_logprobs_and_a_forward_of_each_row_alone(arch, tiny_model_dir):
    _, model, rollout = rollout_of(tiny_model_dir(arch), temperature=0.7)
    ids, mask, positions = rollout.sequences()
    start = rollout.prompt_ids.shape[1]
    with torch.no_grad():
        got = response_logps(model, ids, mask, positions, start, temperature=0.7)
        full = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, start - 1 : -1]
        tail = response_logits(model, ids, mask, positions, start)
    on = rollout.response_mask == 1
    torch.testing.assert_close(got[on], rollout.logprobs[on], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(got[on], per_row_logps(model, rollout, 0.7)[on], atol=2e-5, rtol=1e-4)
    assert (got[~on] == 0).all()
    torch.testing.assert_close(tail, full)  # only the response's logits, through the LM head alone


def test_values_are_aligned_with_the_response_tokens_and_a_policy_critic_starts_at_zero(tiny_model_dir,
                                                                                        tmp_path):
    path = tiny_model_dir("llama")
    _, policy, rollout = rollout_of(path)
    critic = critic_from_policy(str(path), device="cpu").eval()
    for name, p in critic.model.named_parameters():
        torch.testing.assert_close(p, policy.model.get_parameter(name))  # the policy's backbone
    ids, mask, positions = rollout.sequences()
    start = rollout.prompt_ids.shape[1]
    with torch.no_grad():
        assert (token_values(critic, ids, mask, positions, start) == 0).all()  # a zero head
        critic.score.weight.normal_()
        critic.score.bias.fill_(0.25)
        values = token_values(critic, ids, mask, positions, start)
        hidden = critic.model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
    expected = hidden[:, start - 1 : -1] @ critic.score.weight[0] + 0.25  # V(s_t) read before token t
    torch.testing.assert_close(values, expected)
    critic.save_pretrained(tmp_path / "critic")
    assert is_critic_dir(str(tmp_path / "critic")) and not is_critic_dir(str(path))
    again = load_critic(str(tmp_path / "critic"), device="cpu").eval()
    with torch.no_grad():
        torch.testing.assert_close(token_values(again, ids, mask, positions, start), values)


def test_a_reward_model_critic_starts_from_the_mean_of_its_scores(tiny_model_dir, tmp_path):
    from alignlab.modeling.reward_model import build_reward_model, load_reward_model, save_reward_model

    path = tiny_model_dir("llama")
    tok = AutoTokenizer.from_pretrained(path)
    rm = build_reward_model(str(path), num_members=3, pad_token_id=tok.pad_token_id, device="cpu", seed=1)
    save_reward_model(rm, tok, tmp_path / "rm")
    critic = critic_from_reward_model(str(tmp_path / "rm"), device="cpu").eval()
    loaded, _ = load_reward_model(str(tmp_path / "rm"), device="cpu")
    ids = torch.tensor([tok("The sky is blue.")["input_ids"]])
    with torch.no_grad():
        rewards = loaded(ids, torch.ones_like(ids))[:, 0]  # (K,) each head's score of the sequence
        value = critic(input_ids=ids).logits[0, -1, 0]
    torch.testing.assert_close(value, rewards.mean())


def test_the_step_adds_the_clipped_value_loss_to_the_surrogate_over_the_same_items(tiny_model_dir):
    path = tiny_model_dir("llama")
    _, policy, rollout = rollout_of(path)
    critic = critic_from_policy(str(path), device="cpu")
    with torch.no_grad():
        critic.score.weight.normal_(std=0.1)
    modules = PolicyCritic(policy, critic, critic_lr_multiplier=2.0)
    assert modules.lr_multipliers == {"critic.": 2.0}
    ids, mask, positions = rollout.sequences()
    start = rollout.prompt_ids.shape[1]
    resp = rollout.response_mask.float()
    g = torch.Generator().manual_seed(0)
    old = rollout.logprobs + 0.1 * torch.randn(resp.shape, generator=g) * resp
    adv, values = torch.randn(resp.shape, generator=g) * resp, torch.randn(resp.shape, generator=g) * resp
    batch = RolloutBatch(ids, mask, start, old, old - 0.2 * resp, adv, 0.3, values, values + adv)
    micro = batch.micro_batch(torch.arange(len(batch)))
    agg = "seq-mean-token-mean"
    settings = UpdateSettings(agg, 8.0, 1.0, clip_eps=0.1, kl_in_loss=True, kl_estimator="k3", value_clip=0.2,
                              value_coef=0.5)
    out = make_rl_step(settings)(modules, micro)
    m, s = micro["attention_mask"][:, micro["start"]:], micro["start"]
    with torch.no_grad():
        logps = response_logps(policy, micro["input_ids"], micro["attention_mask"], micro["position_ids"], s)
        v = token_values(critic, micro["input_ids"], micro["attention_mask"], micro["position_ids"], s)
    pol = ppo_policy_loss(logps, micro["old_logps"], micro["advantages"], m, clip_eps=0.1,
                          loss_agg=agg, ref_logps=micro["ref_logps"], kl_coef=0.3, kl_estimator="k3")
    val = clipped_value_loss(v, micro["values"], micro["returns"], m, clip_range=0.2, loss_agg=agg)
    torch.testing.assert_close(out.loss.detach(), pol.loss + 0.5 * val.loss, atol=1e-5, rtol=1e-5)
    assert out.metrics["approx_kl"] == pytest.approx(float(pol.approx_kl), rel=1e-4)
    assert out.metrics["kl_loss"] == pytest.approx(float(pol.kl), rel=1e-4)
    assert rl_item_count(agg)(micro) == loss_item_count(m, agg) == len(batch)
    assert rl_item_count("token-mean")(micro) == int(rollout.response_mask.sum())
    out.loss.backward()
    assert critic.score.weight.grad.abs().sum() > 0 and policy.lm_head.weight.grad.abs().sum() > 0
