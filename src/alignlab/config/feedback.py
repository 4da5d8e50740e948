"""AI feedback stages: critique-and-revise (`cai`, SL-CAI) and AI preference labels (`rlaif`, RL-CAI).

The policy, the critic and the judge are each a `BackendConfig`: a model directory, run in-process,
or the API root of an OpenAI-compatible endpoint (`http(s)://host:port/v1`). A constitution is a
file (our YAML / JSON, or a published Constitutional AI prompt file) or the name of one shipped
with alignlab.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from alignlab.config.core import Section
from alignlab.config.sections import ModelConfig

# Shipped with alignlab (alignlab/feedback/constitutions/<name>.yaml); a test checks the list.
BUILTIN_CONSTITUTIONS = ("default", "lab")
URL_SCHEMES = ("http://", "https://")

CONSTITUTION_HELP = (
    "Constitution: a file (our YAML / JSON, or a published Constitutional AI prompt file) or the name of "
    f"one shipped with alignlab ({', '.join(BUILTIN_CONSTITUTIONS)})."
)


def is_url(path: str) -> bool:
    return path.startswith(URL_SCHEMES)


class EndpointConfig(Section):
    """How to call an OpenAI-compatible endpoint (unused for a model directory)."""

    model: str | None = Field(
        default=None, description="Model name sent with each request; null = the first one the endpoint "
        "lists at /models."
    )
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY", description="Environment variable holding the API key (a key is never "
        "written into a config); null or unset = no key."
    )
    timeout: float = Field(default=120.0, gt=0, description="Seconds a request may take before a retry.")
    max_retries: int = Field(default=4, ge=0, description="Retries of a timed-out, 429 or 5xx request.")
    concurrency: int = Field(default=8, gt=0, description="Requests in flight at once.")


class BackendConfig(ModelConfig):
    """A model that writes or judges: a model directory run in-process, or an OpenAI-compatible endpoint.

    The load settings (dtype, device, ...) apply to a directory; `endpoint` to a URL. Responses of an
    endpoint are cached in the stage directory, so an interrupted run, re-run, sends nothing twice.
    """

    path: str = Field(
        description="Model directory (run in-process), or the API root of an OpenAI-compatible endpoint "
        "(http://host:port/v1).",
        json_schema_extra={"input": "model", "url": True},
    )
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig, description="Endpoint settings.")
    batch_size: int = Field(default=16, gt=0, description="Rows generated or scored together in-process.")

    @property
    def is_endpoint(self) -> bool:
        return is_url(self.path)

    def as_model(self) -> ModelConfig:
        """The model section the loaders take (a directory's settings only)."""
        return ModelConfig(**self.model_dump(include=set(ModelConfig.model_fields)))


def _constitution_field() -> object:
    return Field(default="default", description=CONSTITUTION_HELP,
                 json_schema_extra={"input": "file", "names": BUILTIN_CONSTITUTIONS})


class CAIConfig(Section):
    """Critique and revise (SL-CAI): responses, critiques and revisions under a constitution; the final
    revisions are SFT data."""

    model: BackendConfig = Field(
        description="The policy that writes the first responses: a model directory or an endpoint URL."
    )
    prompts: str = Field(
        description="Prompts: JSONL / JSON / parquet / CSV with `messages` (a conversation; trailing "
        "assistant turns are dropped), `prompt` (text or turns) or a prompt-like column; optional `id`.",
        json_schema_extra={"input": "file"},
    )
    limit: int | None = Field(default=None, gt=0, description="Use at most this many prompts.")
    critic: BackendConfig | None = Field(
        default=None,
        description="Writes critiques and revisions (a model directory or endpoint URL); null = the policy.",
    )
    constitution: str = _constitution_field()
    rounds: int = Field(default=1, gt=0, description="Critique-and-revise rounds per prompt.")
    max_new_tokens: int = Field(default=256, gt=0, description="Tokens per response, critique or revision.")
    temperature: float = Field(default=0.0, ge=0, description="Temperature of each step; 0 = greedy.")
    critic_temperature: float | None = Field(
        default=None, ge=0, description="Temperature of the critiques and revisions; null = `temperature`."
    )
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling of every step.")
    seed: int = Field(default=0, description="Seed of the principle draws and the sampling.")
    chunk_size: int = Field(
        default=64, gt=0, description="Prompts taken through all rounds before their audit rows are written."
    )


class RLAIFConfig(Section):
    """AI preference labels: a judge compares two responses under a constitution, in both orders."""

    pairs: str = Field(
        description="Pairs to label: a preference file (its two responses; its own labels serve only as "
        "reference) or the labelling format (prompt, response_a, response_b, optional gold).",
        json_schema_extra={"input": "file"},
    )
    format: str = Field(
        default="auto", description="Format of `pairs`: auto, pairs (the labelling format) or a preference "
        "format (preference, hh-rlhf, ultrafeedback)."
    )
    limit: int | None = Field(default=None, gt=0, description="Label at most this many pairs.")
    judge: BackendConfig = Field(
        description="The judge: a model directory (run in-process; soft labels from P(A) and P(B)) or an "
        "OpenAI-compatible endpoint URL (http://host:port/v1; soft labels from its top log-probs)."
    )
    constitution: str = _constitution_field()
    cot: bool = Field(default=False, description="Ask the judge to reason step by step before it answers.")
    reference: str | None = Field(
        default=None, description="Reference labels (a preference file of human or gold labels) to audit the "
        "AI labels against.", json_schema_extra={"input": "file"},
    )
    reference_annotator: str | None = Field(
        default=None, description="Use only this annotator's reference labels (for files with several)."
    )
    input_labels: bool = Field(
        default=True, description="Also audit against the labels the input carries (a preference file's "
        "chosen side, the labelling format's gold)."
    )
    seed: int = Field(default=0, description="Seed of the principle drawn for each pair.")
    tie_band: float = Field(
        default=0.05, ge=0, lt=0.5, description="A combined probability within this of 0.5 is a tie."
    )
    clamp: tuple[float, float] | None = Field(
        default=None, description="Clamp each order's probability to [low, high] first (Bai et al. use "
        "[0.4, 0.6] with chain of thought)."
    )
    max_new_tokens: int | None = Field(
        default=None, gt=0, description="Tokens of the judge's reply; null = 16 (512 with chain of thought)."
    )
    top_logprobs: int = Field(
        default=5, ge=0, le=20, description="Most likely tokens an endpoint returns per position, for soft "
        "labels at the answer token; 0 = the parsed answer only."
    )
    chunk_size: int = Field(default=64, gt=0, description="Pairs judged before their audit rows are written.")

    @field_validator("clamp")
    @classmethod
    def _clamp_order(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 <= v[0] <= 0.5 <= v[1] <= 1:
            raise ValueError(f"clamp must be [low, high] with 0 <= low <= 0.5 <= high <= 1, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _annotator_needs_reference(self) -> RLAIFConfig:
        if self.reference_annotator is not None and self.reference is None:
            raise ValueError("reference_annotator picks labels of a `reference` file; give the file too")
        return self
