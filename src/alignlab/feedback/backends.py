"""The model behind a `BackendConfig`: a directory run in-process, or an OpenAI-compatible endpoint.

`open_backend` gives a `Backend`: a `Generator` (`generation.hf.HFGenerator` over the loaded model,
or `generation.http.HTTPGenerator` with its on-disk cache), and for a judge run in-process an
`HFChoiceScorer`, which reads soft labels off P("A") and P("B") without generating. An endpoint's
soft labels come from the top log-probs its completions carry. `Backend.id` is what the labels
record as their annotator: the directory as given, or `model@url`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alignlab.config.feedback import BackendConfig
from alignlab.feedback.judge import ChoiceScorer
from alignlab.generation.base import Generator
from alignlab.generation.http import HTTPGenerator


@dataclass
class Backend:
    id: str
    generator: Generator
    scorer: ChoiceScorer | None = None
    http: HTTPGenerator | None = None  # the endpoint client, when it is one

    @property
    def requests_sent(self) -> int:
        """HTTP requests made so far, retries included (cache hits make none); 0 in-process."""
        return self.http.requests_sent if self.http is not None else 0

    def close(self) -> None:
        if self.http is not None:
            self.http.close()


def open_backend(config: BackendConfig, cache_dir: Path | None = None, *, scorer: bool = False) -> Backend:
    """The backend `config` names; `scorer` adds an in-process choice scorer (directories only)."""
    if config.is_endpoint:
        return _endpoint(config, cache_dir)
    from alignlab.feedback.hf_choice import HFChoiceScorer
    from alignlab.generation.hf import HFGenerator
    from alignlab.modeling.loading import load_model, load_model_tokenizer

    section = config.as_model()
    tokenizer, model = load_model_tokenizer(section), load_model(section)
    model.eval()
    choice = HFChoiceScorer(model, tokenizer, batch_size=config.batch_size) if scorer else None
    return Backend(config.path, HFGenerator(model, tokenizer, max_batch_rows=config.batch_size), choice)


def _endpoint(config: BackendConfig, cache_dir: Path | None) -> Backend:
    from alignlab.generation.http import served_models

    ep = config.endpoint
    api_key = os.environ.get(ep.api_key_env) if ep.api_key_env else None
    model = ep.model or served_models(config.path, api_key=api_key, timeout=ep.timeout)[0]
    gen = HTTPGenerator(config.path, model, api_key=api_key or None, timeout=ep.timeout,
                        max_retries=ep.max_retries, concurrency=ep.concurrency, cache_dir=cache_dir)
    return Backend(f"{model}@{config.path}", gen, http=gen)
