"""`train.compile`: `torch.compile` the repeated transformer blocks of the trained model, in place.

Regional compilation (one compiled graph per block class, reused by every layer) rather than the
whole model: it compiles in a fraction of the time, and it covers every way a step function runs
the model (the full causal LM, the backbone alone under `target_logps`, a reward head, an RL
critic). Each block's `forward` is replaced on the instance while a step runs and removed after
it, so parameter names, state dicts, checkpoints and saved models are those of the original module
(no `_orig_mod.` prefixes), and nothing compiled outlives the step.

Laid-out batches (`alignlab.data.layout`) bring new attention blocks with every batch; under dynamic
shapes their bounds are traced as symbols, so a batch with as many sequences as the last reuses the
compiled graph, and only another count (a short last micro-batch) compiles again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from alignlab.config import TrainConfig
from alignlab.errors import ConfigError


def compile_options(train: TrainConfig) -> dict | None:
    """torch.compile keyword arguments for `train.compile` / `train.compile_backend`; None when off."""
    if train.compile is False:
        return None
    backends = torch._dynamo.list_backends(exclude_tags=())
    if train.compile_backend not in backends:
        raise ConfigError(
            f"train.compile_backend: '{train.compile_backend}' is not a torch.compile backend; use one of "
            f"{', '.join(sorted(backends))}"
        )
    options: dict = {"backend": train.compile_backend, "dynamic": True}
    if train.compile is not True and train.compile != "default":
        if train.compile_backend != "inductor":
            raise ConfigError(
                f"train.compile={train.compile}: modes belong to the inductor backend; set "
                f"train.compile=true with train.compile_backend={train.compile_backend}, or use inductor"
            )
        options["mode"] = train.compile
    return options


class CompiledBlocks:
    """Compiled `forward`s of every repeated block of `model`, switched on only inside `active()`.

    The blocks are the modules whose class a Hugging Face model names in `_no_split_modules` (its
    decoder layers); a model without them has its own `forward` compiled instead. Only the step
    function runs compiled: a source's rollouts and `eval_fn` generate or score with the model as
    loaded, so generation with a KV cache never meets the training graphs.
    """

    def __init__(self, model: torch.nn.Module, options: dict) -> None:
        names = {n for m in model.modules() for n in (getattr(m, "_no_split_modules", None) or ())}
        self.blocks = [m for m in model.modules() if type(m).__name__ in names] or [model]
        # Shapes change with every batch: dynamic=True (in `options`) traces them symbolically from
        # the start instead of recompiling once per new length.
        self.forwards = [torch.compile(block.forward, **options) for block in self.blocks]

    @contextmanager
    def active(self) -> Iterator[None]:
        for block, forward in zip(self.blocks, self.forwards, strict=True):
            block.forward = forward  # an instance attribute: parameter names stay the module's own
        try:
            yield
        finally:
            for block in self.blocks:
                block.__dict__.pop("forward", None)
