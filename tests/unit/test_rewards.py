"""Rewards for online RL: rule functions from files and modules with the records' fields, reward
models and ensembles scored with their own template, the lab's gold judge, the weighted sum with a
length penalty, running normalisation and clipping (hand-worked), and one clear error per bad reward."""

from __future__ import annotations

import sys

import pytest
import torch

from alignlab.config import ModelConfig, RewardComponentConfig
from alignlab.config.rl import RewardShapingConfig
from alignlab.data.prompts import PromptRecord
from alignlab.data.schema import assistant, user
from alignlab.data.templating import encode_prompt_response, fit_to_length
from alignlab.errors import ConfigError, ModelLoadError, RewardError
from alignlab.lab.judges import gold_utility
from alignlab.lab.tasks import draw
from alignlab.lab.world import build_world
from alignlab.rewards.base import RewardInputs, checked_scores
from alignlab.rewards.build import build_reward_set
from alignlab.rewards.combine import RewardSet, RunningMoments
from alignlab.rewards.functions import FunctionReward
from alignlab.rewards.gold import GoldReward

RULES = '''
def mentions_river(prompts, completions, **fields):
    return [1.0 if "river" in c.lower() else 0.0 for c in completions]

def echo_fields(prompts, completions, answer, completion_ids):
    return [float(a == c) + 0.01 * len(ids) for a, c, ids in zip(answer, completions, completion_ids)]

def wrong_length(prompts, completions, **fields):
    return [1.0]

def boom(prompts, completions, **fields):
    raise KeyError("no such field")

def not_finite(prompts, completions, **fields):
    return [float("nan")] * len(completions)

def strings(prompts, completions, **fields):
    return ["high"] * len(completions)
'''


def inputs(completions, fields=None, prompt="Name a river.") -> RewardInputs:
    records = [PromptRecord((user(prompt),), dict(fields or {}), where=f"p.jsonl:{i + 1}")
               for i in range(len(completions))]
    return RewardInputs(records, completions, [list(range(len(c.split()))) for c in completions])


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "rules.py"
    path.write_text(RULES)
    return path


def test_a_rule_reward_from_a_file_or_a_module_gets_prompts_completions_and_the_fields(rules, monkeypatch):
    river = FunctionReward(f"{rules}:mentions_river")
    assert river.name == "mentions_river"
    assert list(river(inputs(["The River Osk.", "A town."]))) == [1.0, 0.0]
    # Without **kwargs the function gets only the fields it names: answer and the token ids.
    echo = FunctionReward(f"{rules}:echo_fields", name="exact")
    got = echo(inputs(["Osk", "Vale river"], {"answer": "Osk", "unused": 3}))
    assert echo.name == "exact" and got == pytest.approx([1.01, 0.02])
    monkeypatch.syspath_prepend(str(rules.parent))
    assert list(FunctionReward("rules:mentions_river")(inputs(["river"]))) == [1.0]
    sys.modules.pop("rules", None)


def test_bad_reward_functions_are_one_clear_error_naming_them(rules):
    cases = {
        "wrong_length": "reward 'wrong_length' returned 1 scores for 2 completions",
        "boom": "reward 'boom' raised KeyError: 'no such field'",
        "not_finite": "reward 'not_finite' returned non-finite scores (nan) for completions [0, 1]",
        "strings": "reward 'strings' returned str 'high' at position 0",
    }
    for fn, message in cases.items():
        reward = FunctionReward(f"{rules}:{fn}")
        with pytest.raises(RewardError) as err:
            checked_scores(reward.name, lambda r=reward: r(inputs(["a", "b"])), 2)
        assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"'nowhere.py:fn': file nowhere.py not found"):
        FunctionReward("nowhere.py:fn")
    with pytest.raises(ConfigError, match=r"'missing' is not a function of .*rules.py; its functions: boom"):
        FunctionReward(f"{rules}:missing")
    with pytest.raises(ConfigError, match=r"cannot import module 'no_such_module_xyz'"):
        FunctionReward("no_such_module_xyz:fn")
    with pytest.raises(ConfigError, match="expected path/to/file.py:function"):
        FunctionReward("just_a_name")


def test_the_gold_reward_scores_the_lab_utility_and_needs_gold_fields():
    sample = draw(build_world(), "answerable", "train", 1)[0]
    record = PromptRecord(sample.messages, {"gold": {**sample.to_json()["gold"]}}, "rl.jsonl:1")
    batch = RewardInputs([record, record], [sample.gold.response, "I don't know."], [[1], [2]])
    gold, wrong = GoldReward()(batch)
    assert gold == 1.0 and wrong == gold_utility(sample, "I don't know.") == 0.375  # deflection
    with pytest.raises(RewardError, match=r"reward 'gold': p.jsonl:1 has no `gold` object"):
        GoldReward()(inputs(["x"]))


def test_weighted_sum_length_penalty_normalisation_and_clip_by_hand(rules):
    """Two rewards: river (weight 2) and a constant 0.5 (weight 0, a metric only). Lengths (words
    here, as the fake token ids count them) 3 and 1, penalty 0.1 per token:
        raw = 2·[1, 0] − 0.1·[3, 1] = [1.7, −0.1]
    normalised with the running moments after this batch (mean 0.8, population std 0.9):
        [(1.7 − 0.8)/0.9, (−0.1 − 0.8)/0.9] = [1, −1], then clipped to ±0.5."""

    class Half:
        name = "half"

        def __call__(self, batch):
            return [0.5] * len(batch)

    rs = RewardSet([(FunctionReward(f"{rules}:mentions_river"), 2.0), (Half(), 0.0)], length_penalty=0.1,
                   normalize=True, clip=0.5)
    out = rs(inputs(["a big river", "no"]))
    assert out.raw.tolist() == pytest.approx([1.7, -0.1])
    assert out.total.tolist() == pytest.approx([0.5, -0.5])
    assert out.components["half"].tolist() == [0.5, 0.5]
    assert out.components["mentions_river"].tolist() == [1, 0]
    assert (rs.moments.count, rs.moments.mean, rs.moments.std) == (2, pytest.approx(0.8), pytest.approx(0.9))
    state = rs.state_dict()
    again = RewardSet([(FunctionReward(f"{rules}:mentions_river"), 2.0), (Half(), 0.0)], length_penalty=0.1,
                      normalize=True, clip=0.5)
    again.load_state_dict(state)
    held_out = again(inputs(["river"]), update=False)  # raw 2 − 0.1 = 1.9 -> (1.9 − 0.8)/0.9 = 1.22 -> 0.5
    assert held_out.total.tolist() == [0.5] and again.moments.count == 2


def test_running_moments_merge_batches_like_one_pass():
    values = torch.tensor([0.5, -1.0, 2.0, 3.5, 0.0, 1.25, -0.75])
    m = RunningMoments()
    for chunk in (values[:3], values[3:4], values[4:]):
        m.update(chunk)
    assert m.count == 7 and m.mean == pytest.approx(float(values.double().mean()))
    assert m.std == pytest.approx(float(values.double().std(correction=0)))


@pytest.fixture(scope="module")
def reward_dirs(tmp_path_factory, tiny_model_dir):
    """Two saved tiny reward models: a 2-head ensemble (aggregate min), and a single head whose
    tokenizer renders another chat template than the policy's."""
    from transformers import AutoTokenizer

    from alignlab.modeling.reward_model import build_reward_model, save_reward_model

    out = {}
    for name, arch, heads, aggregate in (("ens", "llama", 2, "min"), ("other", "gpt2", 1, "mean")):
        src = tiny_model_dir(arch)
        tok = AutoTokenizer.from_pretrained(src)
        rm = build_reward_model(str(src), num_members=heads, pad_token_id=tok.pad_token_id, device="cpu",
                                seed=3)
        out[name] = tmp_path_factory.mktemp(name)
        save_reward_model(rm, tok, out[name], aggregate=aggregate)
    return out


def test_reward_models_score_the_decoded_text_with_their_own_template_and_pool_into_an_ensemble(reward_dirs):
    from transformers import AutoTokenizer

    from alignlab.modeling.reward_model import load_reward_model, score_examples

    cpu = ModelConfig(path="unused", device="cpu")
    shaping = RewardShapingConfig()
    batch = inputs(["The river Osk.", "Hello there, a long reply."])
    one = build_reward_set([RewardComponentConfig(model=[str(reward_dirs["ens"])])], shaping, cpu)
    rm_reward = one.components[0][0]
    assert rm_reward.name == "rm" and rm_reward.aggregate == "min" and rm_reward.num_members == 2
    members = rm_reward.member_scores(batch)
    assert one(batch).components["rm"].tolist() == pytest.approx(members.min(0).values.tolist())

    # The gpt2 reward model has its own tokenizer and (default) template: the reward equals a direct
    # scoring of the text rendered that way.
    tok = AutoTokenizer.from_pretrained(reward_dirs["other"])
    model, _ = load_reward_model(str(reward_dirs["other"]), device="cpu")
    examples = [fit_to_length(encode_prompt_response(tok, p.messages, [assistant(c)]), 1024)
                for p, c in zip(batch.prompts, batch.completions, strict=True)]
    direct = score_examples(model, examples, pad_token_id=tok.pad_token_id, batch_size=4)[0]
    other = build_reward_set([RewardComponentConfig(model=[str(reward_dirs["other"])])], shaping, cpu)
    assert other(batch).components["rm"].tolist() == pytest.approx(direct.tolist(), abs=1e-5)

    both = [str(reward_dirs["ens"]), str(reward_dirs["other"])]
    pooled = build_reward_set([RewardComponentConfig(model=both, aggregate="mean", name="pool")], shaping,
                              cpu)
    expected = torch.cat([members, direct[None]]).mean(0)
    assert pooled(batch).components["pool"].tolist() == pytest.approx(expected.tolist(), abs=1e-5)


def test_a_reward_model_that_does_not_load_and_duplicate_names_are_clear_errors(tmp_path, rules):
    cpu = ModelConfig(path="unused", device="cpu")
    with pytest.raises(ModelLoadError, match=r"reward 'rm': model directory '.*missing-rm' not found"):
        build_reward_set([RewardComponentConfig(model=[str(tmp_path / "missing-rm")])], RewardShapingConfig(),
                         cpu)
    broken = tmp_path / "broken-rm"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"reward 'rm': .*broken-rm: cannot load a reward model"):
        build_reward_set([RewardComponentConfig(model=[str(broken)])], RewardShapingConfig(), cpu)
    twice = [RewardComponentConfig(function=f"{rules}:boom"), RewardComponentConfig(function=f"{rules}:boom")]
    with pytest.raises(ConfigError, match="two rewards are named boom"):
        build_reward_set(twice, RewardShapingConfig(), cpu)
