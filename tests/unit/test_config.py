"""Configs: YAML + dotted overrides, errors that name the key, every shipped YAML validates."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from alignlab.config import (
    SFTConfig,
    TrainConfig,
    apply_overrides,
    describe_schema,
    load_config,
    load_yaml,
    parse_override,
)
from alignlab.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
BASE = {"model": {"path": "m"}, "data": {"path": "d.jsonl"}}


def test_override_values_are_parsed_as_yaml():
    assert parse_override("optim.lr=3e-5") == (["optim", "lr"], 3e-5)
    assert parse_override("train.trackers=[tensorboard]") == (["train", "trackers"], ["tensorboard"])
    assert parse_override("train.max_steps=null") == (["train", "max_steps"], None)
    assert parse_override("model.path=a=b") == (["model", "path"], "a=b")


def test_overrides_create_sections_and_do_not_mutate_input():
    data = {"optim": {"lr": 1.0}}
    out = apply_overrides(data, ["optim.lr=2", "train.seed=7"])
    assert out == {"optim": {"lr": 2}, "train": {"seed": 7}}
    assert data == {"optim": {"lr": 1.0}}


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "sft.yaml"
    f.write_text("model: {path: m}\ndata: {path: d.jsonl}\noptim: {lr: 0.001}\n")
    cfg = load_config(SFTConfig, f, ["optim.lr=0.5", "train.max_steps=3"])
    assert cfg.optim.lr == 0.5 and cfg.train.max_steps == 3 and cfg.model.path == "m"
    with pytest.raises(ValidationError):
        cfg.optim = None  # frozen after load


def test_unknown_key_is_named_with_valid_keys():
    with pytest.raises(ConfigError) as e:
        load_config(SFTConfig, base=BASE, overrides=["optim.lrr=1"])
    msg = str(e.value)
    assert "config key 'optim.lrr': unknown key" in msg and "lr, weight_decay" in msg


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"config key 'train.batch_size'.*got 'eight'"):
        load_config(SFTConfig, base=BASE, overrides=["train.batch_size=eight"])


def test_missing_required_key_and_source_file_are_named(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("data: {path: d.jsonl}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: config key 'model': required key is missing"):
        load_config(SFTConfig, f)


def test_invalid_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+: not valid YAML"):
        load_yaml(f)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml("does/not/exist.yaml")


def test_every_field_is_described():
    for cls in (SFTConfig, TrainConfig):
        for key, _, desc in describe_schema(cls):
            assert desc, f"{cls.__name__}.{key} has no description"


def test_every_shipped_yaml_validates():
    from alignlab.feedback.constitution import load_constitution
    from alignlab.pipeline import plan
    from alignlab.recipe import load_recipe

    # recipes/accelerate holds `accelerate launch` configs, checked by test_accelerate_configs.py.
    recipes = [
        f for f in sorted(REPO.glob("recipes/**/*.yaml")) if "accelerate" not in f.relative_to(REPO).parts
    ]
    files = recipes + sorted(REPO.glob("src/**/*.yaml"))
    assert files, "no shipped YAML found"
    for f in files:
        if "constitutions" in f.parts:  # constitutions are data for critique and labelling, not recipes
            assert load_constitution(f).principles, f
            continue
        recipe = load_recipe(f)
        stages = plan(recipe, Path("/nonexistent-run-dir"), f.parent, source=str(f))
        assert stages, f
