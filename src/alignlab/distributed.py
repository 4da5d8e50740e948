"""Which process this is under a multi-process launch (`torchrun`, `accelerate launch`), and waiting.

Every process of a launch runs the same stage code: training is collective, but files, registry
rows and log lines must come from one process only (the main one), and the others must not read
an artefact before it is complete. These helpers answer "am I the main process?" and "wait for
the others" without importing accelerate (or torch) in a single-process run, where they are
trivially true and a no-op. They use accelerate's process state, so they agree with the loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from alignlab.errors import ConfigError, PipelineError

T = TypeVar("T")


def launched_processes() -> int:
    """How many processes the launcher started (`WORLD_SIZE`, set by torchrun / accelerate launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _state():
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # The same cpu flag the Accelerator reads later: the state is a process-wide singleton, and one
    # created without it would leave CPU processes unjoined.
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def init_processes() -> None:
    """Join the launch's processes before any stage runs (a no-op for a single process).

    Raises ConfigError when several processes were launched but accelerate did not join them
    (on a machine without GPUs that needs ACCELERATE_USE_CPU=1): each would otherwise train alone.
    """
    if launched_processes() <= 1:
        return
    state = _state()
    if state.num_processes != launched_processes():
        raise ConfigError(
            f"{launched_processes()} processes were launched but accelerate joined {state.num_processes}; "
            "on CPU set ACCELERATE_USE_CPU=1 (or use `accelerate launch --cpu`), then relaunch"
        )


def distributed_rank() -> int:
    """This process's index in the launch (0 for a single process)."""
    return 0 if launched_processes() <= 1 else _state().process_index


def is_main_process() -> bool:
    """True on the one process that writes files, registry rows and log lines."""
    return launched_processes() <= 1 or _state().is_main_process


def wait_for_everyone() -> None:
    """A barrier across the launch's processes (a no-op for a single process)."""
    if launched_processes() > 1:
        _state().wait_for_everyone()


def gather_objects(obj: Any) -> list[Any]:
    """`obj` of every process, in process order (picklable objects; `[obj]` for one process)."""
    if launched_processes() <= 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def run_on_main(fn: Callable[[], T], what: str) -> T | None:
    """Run `fn` on the main process only while the others wait; they fail too if it fails.

    Returns fn's result on the main process and None elsewhere.
    """
    if launched_processes() <= 1:
        return fn()
    result, error = None, None
    if is_main_process():
        try:
            result = fn()
        except Exception as err:  # re-raised below, once every process knows
            error = err
    failed = any(gather_objects(error is not None))  # doubles as the barrier
    if error is not None:
        raise error
    if failed:
        raise PipelineError(f"{what} failed on the main process; see its error above")
    return result
