"""Open what an eval config names as a model: a directory in process, an endpoint, or a responses file.

- A model directory is loaded once (`alignlab.modeling.loading`, every setting of its section) and
  serves as an `HFGenerator`, an `HFLogLikelihood` (multiple-choice suites) and the white-box model
  of attacks that need its gradients (GCG).
- An `http(s)://` URL is an `HTTPGenerator`; the API key comes from `endpoint.api_key` or the
  environment variable `endpoint.api_key_env`; without `endpoint.model` the endpoint's one listed
  model is used. Responses are cached in the stage directory when `endpoint.cache` is on.
- A CSV / JSONL file is a `ResponsesFile` (existing responses, no model).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignlab.config.evals import EvalModelConfig
from alignlab.errors import ConfigError
from alignlab.evals.likelihood import LogLikelihood
from alignlab.generation.base import Generator


@dataclass(frozen=True)
class Opened:
    """A model to evaluate, in the forms its kind supports."""

    generator: Generator
    loglikelihood: LogLikelihood | None = None  # in process only
    white_box: Any | None = None  # the HFGenerator (model + tokenizer) of an in-process model
    description: str = ""


@contextmanager
def open_source(config: EvalModelConfig, *, cache_dir: Path | None = None) -> Iterator[Opened]:
    """The model `config` names, released (weights freed, connections closed) on exit."""
    source = config.source
    if source == "endpoint":
        with _endpoint(config, cache_dir) as opened:
            yield opened
    elif source == "responses":
        from alignlab.evals.responses import ResponsesFile

        yield Opened(ResponsesFile(config.path), description=f"responses file {config.path}")
    else:
        with _in_process(config) as opened:
            yield opened


@contextmanager
def _endpoint(config: EvalModelConfig, cache_dir: Path | None) -> Iterator[Opened]:
    from alignlab.generation.http import HTTPGenerator

    ep = config.endpoint
    key = ep.api_key.get_secret_value() if ep.api_key is not None else os.environ.get(ep.api_key_env) or None
    if ep.model is None:
        name = _only_model(config.path, key, ep.timeout)
    else:  # fail now, not at the first prompt, when nothing answers there
        from alignlab.generation.http import check_reachable

        check_reachable(config.path, api_key=key, timeout=min(ep.timeout, 10.0))
        name = ep.model
    generator = HTTPGenerator(
        config.path, name, api_key=key, timeout=ep.timeout, max_retries=ep.max_retries,
        concurrency=ep.concurrency, cache_dir=cache_dir if ep.cache else None,
    )  # fmt: skip
    try:
        yield Opened(generator, description=f"endpoint {config.path} (model {name})")
    finally:
        generator.close()


def _only_model(url: str, api_key: str | None, timeout: float) -> str:
    from alignlab.generation.http import served_models

    names = served_models(url, api_key=api_key, timeout=min(timeout, 10.0))
    if len(names) != 1:
        listed = ", ".join(names) or "none"
        raise ConfigError(f"{url} serves {len(names)} models ({listed}): name one with endpoint.model "
                          "(--model-name)")  # fmt: skip
    return names[0]


@contextmanager
def _in_process(config: EvalModelConfig) -> Iterator[Opened]:
    from alignlab.evals.likelihood import HFLogLikelihood
    from alignlab.generation.hf import HFGenerator
    from alignlab.modeling.loading import load_model, load_model_tokenizer

    section = config.as_model()
    tokenizer, model = load_model_tokenizer(section), load_model(section)
    model.eval()
    generator = HFGenerator(model, tokenizer, max_batch_rows=config.batch_size)
    try:
        yield Opened(generator, HFLogLikelihood(model, tokenizer, batch_size=config.batch_size), generator,
                     f"model {config.path}")  # fmt: skip
    finally:
        del generator, model
        _free_memory()


def _free_memory() -> None:
    """Give a released model's memory back before the next checkpoint loads."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
