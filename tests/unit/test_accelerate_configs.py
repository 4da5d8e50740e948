"""The shipped `accelerate launch` configs (recipes/accelerate/*.yaml) are read by accelerate's own
config loader and launcher code into the environment its processes start with, and that
environment asks for what each file's name says: DDP, FSDP2 with per-layer wrapping and a full
state dict, DeepSpeed ZeRO-2 / ZeRO-3 (ZeRO-3 gathering 16-bit weights on save); one or two nodes."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))


def launch_env(path: Path, monkeypatch) -> tuple[object, object, dict[str, str]]:
    """(config, launch args, environment) for `accelerate launch --config_file path -m alignlab.cli sft`."""
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import launch as launch_utils

    config = load_config_from_file(str(path))  # unknown top-level keys raise here
    assert isinstance(config, ClusterConfig)
    parser = launch_command_parser()
    known = {action.dest for action in parser._actions}
    # Nested keys become launch options; the launcher would silently keep one it does not know.
    for key in config.fsdp_config or {}:
        assert (key if key.startswith("fsdp_") else f"fsdp_{key}") in known, f"{path.name}: fsdp_config.{key}"
    for key in config.deepspeed_config or {}:
        assert key in known, f"{path.name}: deepspeed_config.{key}"
    args, defaults, _ = _validate_launch_command(
        parser.parse_args(["--config_file", str(path), "-m", "alignlab.cli", "sft"])
    )
    monkeypatch.setattr(launch_utils, "is_port_in_use", lambda port: False)  # nothing is started
    if args.use_deepspeed:
        # As accelerate's launch_command does before it starts DeepSpeed.
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = launch_utils.prepare_deepspeed_cmd_env(args)
    else:
        env = launch_utils.prepare_multi_gpu_env(args)
    return config, args, env


def test_every_config_is_found():
    names = {p.stem for p in CONFIGS}
    for kind in ("ddp", "fsdp2", "zero2", "zero3"):
        assert {kind, f"{kind}-multinode"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_the_launcher_reads_the_config_into_what_its_name_says(path, monkeypatch):
    config, args, env = launch_env(path, monkeypatch)
    kind = path.stem.removesuffix("-multinode")
    assert args.module and args.training_script == "alignlab.cli"
    if kind == "ddp":
        assert args.multi_gpu and "ACCELERATE_USE_FSDP" not in env and "ACCELERATE_USE_DEEPSPEED" not in env
    elif kind == "fsdp2":
        assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
        assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
        assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"
    else:
        assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
        assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == kind[-1]
        # The loop requires DeepSpeed's accumulation to equal train.grad_accum (default 1).
        assert env["ACCELERATE_GRADIENT_ACCUMULATION_STEPS"] == "1"
        if kind == "zero3":  # alignlab saves the gathered weights, which ZeRO-3 gives only with this
            assert env["ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL"] == "true"
    if path.stem.endswith("-multinode"):
        assert config.num_machines == 2 and args.nnodes == "2" and args.node_rank == 0
        assert args.nproc_per_node == str(config.num_processes // 2)
    else:
        assert config.num_machines == 1 and args.nproc_per_node == str(config.num_processes)


def test_the_fsdp2_config_builds_a_plugin_that_wraps_each_decoder_layer(monkeypatch, tiny_model_dir):
    """What the processes build from that environment: FSDP2, full state dict, and the layer class
    taken from the model's own `_no_split_modules` (no class is named in the file)."""
    from accelerate import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import StateDictType
    from transformers import AutoModelForCausalLM

    _, _, env = launch_env(REPO / "recipes" / "accelerate" / "fsdp2.yaml", monkeypatch)
    for key, value in env.items():
        if key.startswith("FSDP_"):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir("llama"))
    plugin.set_auto_wrap_policy(model)
    assert {
        cls.__name__ for cls in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]
    } == {"LlamaDecoderLayer"}
