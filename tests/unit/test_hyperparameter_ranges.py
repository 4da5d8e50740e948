"""Loss and advantage hyperparameters are range-checked from their registered declarations."""

import pytest

from alignlab.cli import main
from alignlab.config import DPOConfig, load_config
from alignlab.errors import ConfigError
from alignlab.losses.advantages import advantage_names, get_advantage
from alignlab.losses.registry import get_loss, loss_names

BASE = {"model": {"path": "m"}, "data": {"path": "d"}}


@pytest.mark.parametrize(("loss", "params", "message"), [
    ("dpo", ["loss_params.beta=-1"], "beta must be > 0, got -1"),
    ("dpo", ["loss_params.beta=0"], "beta must be > 0, got 0"),
    ("cdpo", ["loss_params.label_smoothing=0.5"], "label_smoothing must be in [0, 0.5), got 0.5"),
    ("rpo", ["loss_params.nll_weight=-0.1"], "nll_weight must be >= 0, got -0.1"),
    ("kto", ["loss_params.desirable_weight=-1"], "desirable_weight must be >= 0, got -1"),
])
def test_a_hyperparameter_out_of_its_range_is_a_config_error(loss, params, message):
    with pytest.raises(ConfigError, match="config key 'loss_params'") as err:
        load_config(DPOConfig, base=BASE, overrides=[f"loss={loss}", *params])
    assert message in str(err.value) and f"loss '{loss}'" in str(err.value)


def test_values_in_range_and_defaults_are_accepted():
    cfg = load_config(DPOConfig, base=BASE, overrides=["loss=cdpo", "loss_params.beta=0.5",
                                                       "loss_params.label_smoothing=0.0"])
    assert cfg.loss_params == {"beta": 0.5, "label_smoothing": 0.0}


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_hyperparameter_declares_a_range_that_holds_its_default(name):
    spec = get_loss(name)
    assert set(spec.ranges) == set(spec.hyperparameters), name
    for key, default in spec.hyperparameters.items():
        assert spec.ranges[key].problem(default) is None, (name, key)


@pytest.mark.parametrize("name", advantage_names())
def test_every_advantage_hyperparameter_declares_a_range_that_holds_its_default(name):
    spec = get_advantage(name)
    assert set(spec.ranges) == set(spec.hyperparameters), name
    for key, default in spec.hyperparameters.items():
        assert spec.ranges[key].problem(default) is None, (name, key)


def test_advantage_estimators_check_their_hyperparameters():
    with pytest.raises(ValueError, match=r"advantage estimator 'gae': lam must be in \[0, 1\], got 1.5"):
        get_advantage("gae").check_params({"lam": 1.5})
    with pytest.raises(ValueError, match="has no hyperparameter"):
        get_advantage("grpo").check_params({"lam": 0.5})
    get_advantage("gae").check_params({"gamma": 0.99, "lam": 0.95})


def test_validate_rejects_a_negative_beta(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nstages:\n  dpo:\n    kind: dpo\n"
                      "    config: {model: {path: m}, data: {path: d}, loss: dpo, loss_params: {beta: -1}}\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["validate", str(recipe)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "stages.dpo.config.loss_params" in err and "beta must be > 0" in err
