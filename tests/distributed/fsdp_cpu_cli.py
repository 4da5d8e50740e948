"""`alignlab` for the FSDP test: the real command, with accelerate's FSDP path let through on CPU.

accelerate 1.15 enables FSDP only for GPU-like process groups: `AcceleratorState.__init__`
(accelerate/state.py) sets `distributed_type = FSDP` inside
`elif self.distributed_type in [MULTI_GPU, MULTI_NPU, ...]`, and CPU processes are `MULTI_CPU`.
Under `ACCELERATE_USE_CPU=1` the FSDP settings of `accelerate launch --config_file fsdp2.yaml`
are then silently ignored and the model is wrapped in DDP. torch's FSDP2 (`fully_shard`) itself
runs on CPU with gloo, so this runner makes the one switch accelerate withholds: a CPU state given
an FSDP plugin becomes an FSDP state. Everything after it (`fsdp2_prepare_model`, gathering the
full state dict, sharded checkpoints, resume) is accelerate's and alignlab's own code.

    accelerate launch --config_file recipes/accelerate/fsdp2.yaml --num_processes 2 \
        tests/distributed/fsdp_cpu_cli.py sft ...      # with ACCELERATE_USE_CPU=1
"""

import sys

from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

_init = AcceleratorState.__init__


def _init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin
        # Every later AcceleratorState() copies the process state over its own: keep them agreeing.
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP


if __name__ == "__main__":
    AcceleratorState.__init__ = _init_with_fsdp_on_cpu
    from alignlab.cli import main

    main(sys.argv[1:])
