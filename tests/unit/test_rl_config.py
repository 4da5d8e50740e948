"""Online RL configs: each method's defaults come from its advantage estimator's registry entry, bad
combinations are one clear error naming the key, and the commands map their flags onto the config
(repeated --reward-model / --reward append rewards) with help read from the registries."""

from __future__ import annotations

import re

import pytest

from alignlab.cli import main
from alignlab.config import GRPOConfig, PPOConfig, RLOOConfig, load_config
from alignlab.config.rl import resolved
from alignlab.errors import ConfigError
from alignlab.losses.advantages import advantage_names
from alignlab.losses.kl import kl_estimator_names

BASE = {"model": "m", "prompts": {"path": "p.jsonl"}, "rewards": [{"function": "r.py:fn"}]}


def cfg(cls, *overrides):
    return load_config(cls, base=BASE, overrides=overrides)


def test_each_method_resolves_its_papers_defaults():
    keys = ("samples_per_prompt", "kl_placement", "kl_estimator", "loss_agg", "whiten")
    assert resolved(cfg(PPOConfig)) == dict(zip(keys, (1, "reward", "k1", "token-mean", True), strict=True))
    assert resolved(cfg(GRPOConfig)) == dict(zip(keys, (4, "loss", "k3", "seq-mean-token-mean", False),
                                                 strict=True))
    assert resolved(cfg(RLOOConfig)) == dict(zip(keys, (4, "reward", "k1", "seq-mean-token-sum-norm", False),
                                                 strict=True))
    dr = resolved(cfg(GRPOConfig, "advantage=dr_grpo", "kl.placement=reward", "kl.estimator=k2",
                      "update.loss_agg=token-mean", "rollout.samples_per_prompt=8"))
    assert dr == dict(zip(keys, (8, "reward", "k2", "token-mean", False), strict=True))
    ppo = cfg(PPOConfig, "advantage_params={gamma: 0.99, lam: 0.9}", "value.init=reward_model")
    assert ppo.advantage_params == {"gamma": 0.99, "lam": 0.9} and ppo.value.init == "reward_model"


@pytest.mark.parametrize("cls, overrides, message", [
    (GRPOConfig, ["advantage=gae"], "advantage estimator 'gae' needs a critic: use ppo"),
    (PPOConfig, ["advantage=rloo"], "advantage estimator 'rloo' has no critic: use grpo or rloo"),
    (GRPOConfig, ["rollout.samples_per_prompt=1"], "set rollout.samples_per_prompt >= 2"),
    (PPOConfig, ["update.minibatches=3"], "update.minibatches=3 must divide the 8 replies"),
    (PPOConfig, ["train.grad_accum=2"], "train.grad_accum is not used by online RL"),
    (PPOConfig, ["advantage_params={beta: 1}"], "advantage 'gae' has no hyperparameter beta; valid: "
                                                "gamma, lam"),
    (GRPOConfig, ["kl.coef=-1"], "config key 'kl.coef': Input should be greater than or equal to 0"),
    (GRPOConfig, ["kl.estimator=k4"], "unknown KL estimator 'k4'; choose one of: k1, k2, k3"),
    (GRPOConfig, ["update.loss_agg=mean"], "unknown loss aggregation 'mean'"),
    (GRPOConfig, ["advantage=ppo"], "unknown advantage estimator 'ppo'; choose one of: gae, grpo"),
    (GRPOConfig, ["rewards=[{gold: true, function: 'r.py:f'}]"], "exactly one of model, function or gold"),
    (GRPOConfig, ["rewards=[{weight: 1}]"], "exactly one of model, function or gold; got none"),
    (GRPOConfig, ["rewards=[]"], "config key 'rewards'"),
])
def test_bad_combinations_are_one_error_naming_the_key(cls, overrides, message):
    with pytest.raises(ConfigError) as err:
        cfg(cls, *overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_repeated_reward_flags_append_to_the_config_files_rewards(tmp_path, monkeypatch):
    seen = {}

    def capture(kind, config, output, **kw):
        seen[kind] = config

    monkeypatch.setattr("alignlab.pipeline.run_in_dir", capture)
    yaml = tmp_path / "ppo.yaml"
    yaml.write_text("rewards: [{gold: true, weight: 0}]\nkl: {coef: 0.2}\n")
    with pytest.raises(SystemExit) as e:
        main(["ppo", "--model", "m", "--prompts", "p.jsonl", "--output", str(tmp_path / "out"),
              "--config", str(yaml), "--reward-model", "rm1", "--reward-model", "rm2", "--reward", "a.py:f",
              "--reward", "b:g", "--target-kl", "3", "--lora", "--max-steps", "5", "update.epochs=2"])
    assert e.value.code in (0, None)
    config = seen["ppo"]
    assert [c.model_dump(include={"model", "function", "gold", "weight"}) for c in config.rewards] == [
        {"model": None, "function": None, "gold": True, "weight": 0.0},
        {"model": ["rm1", "rm2"], "function": None, "gold": False, "weight": 1.0},
        {"model": None, "function": "a.py:f", "gold": False, "weight": 1.0},
        {"model": None, "function": "b:g", "gold": False, "weight": 1.0},
    ]
    assert (config.kl.coef, config.kl.target, config.lora.enabled, config.train.max_steps,
            config.update.epochs) == (0.2, 3.0, True, 5, 2)


@pytest.mark.parametrize("kind", ["ppo", "grpo", "rloo"])
def test_the_commands_help_lists_the_registered_estimators(kind, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit):
        main([kind, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    words = set(re.findall(r"[A-Za-z0-9_]+", text))
    assert set(advantage_names()) <= words and set(kl_estimator_names()) <= words
    for flag in ("--reward-model", "--reward", "--kl-coef", "--target-kl", "--lora", "--max-steps",
                 "--prompts"):
        assert flag in text
