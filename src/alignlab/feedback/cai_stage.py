"""The `cai` stage: critique and revise (SL-CAI) under a constitution; the final revisions are SFT data.

Reads prompts (`feedback.inputs.read_prompt_file`), has the policy answer and the critic (the policy
unless another model is given) critique and revise for `rounds` rounds
(`feedback.critique.critique_and_revise`), and writes:

- `sft.jsonl`: one conversation per prompt, the prompt and its final revision, with the constitution
  hash and the principles used in its metadata, for `alignlab sft` (`${cai.sft}` in a recipe);
- `audit.jsonl`: every response, critique and revision, and every failure; also the resume journal.

An endpoint's responses are cached in `http_cache/`. A generation the backend failed (after its
retries) stops the stage with an error once the rest are done; the audit and cache are kept, and
the same command, run again, redoes only those prompts. Empty replies (a model with nothing to
say) are counted and their prompts left out of the data, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from alignlab.config.feedback import CAIConfig
from alignlab.errors import AlignlabError, DataError
from alignlab.generation.base import Completion, Generator, Prompt, SamplingParams
from alignlab.stage_io import StageContext

EMPTY = "empty reply"  # what critique_and_revise records for a reply with no text


class GenerationsFailed(AlignlabError):
    """Some generations failed at the backend; the run can be resumed."""


@dataclass(frozen=True)
class Tempered:
    """A generator asked at its own temperature: the critic may sample otherwise than the policy."""

    inner: Generator
    temperature: float

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return self.inner.generate(prompts, replace(params, temperature=self.temperature))


def run_cai(config: CAIConfig, ctx: StageContext) -> dict[str, Any]:
    from alignlab.data.readers import write_records
    from alignlab.feedback.backends import open_backend
    from alignlab.feedback.constitution import constitution_from_config
    from alignlab.feedback.critique import critique_and_revise
    from alignlab.feedback.inputs import read_prompt_file

    constitution = constitution_from_config(config.constitution, ctx.config_key("constitution"))
    constitution.critique_principles()  # a constitution that cannot critique fails before any model loads
    prompts = read_prompt_file(config.prompts, config.limit)
    ctx.log(f"cai: {len(prompts.ids)} prompts, {config.rounds} round(s), policy {config.model.path}, "
            f"critic {(config.critic or config.model).path}")
    policy = open_backend(config.model, ctx.path("cache"))
    separate = config.critic is not None and config.critic != config.model
    critic = open_backend(config.critic, ctx.path("cache")) if separate else None
    params = SamplingParams(max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                            top_p=config.top_p, seed=config.seed)
    critic_gen = critic.generator if critic else None
    if config.critic_temperature not in (None, config.temperature):
        critic_gen = Tempered(critic_gen or policy.generator, config.critic_temperature)
    try:
        result = critique_and_revise(
            policy.generator, prompts.prompts, constitution, rounds=config.rounds, seed=config.seed,
            audit_path=ctx.path("audit"), critic=critic_gen, params=params, ids=prompts.ids,
            chunk_size=config.chunk_size,
        )
    finally:
        policy.close()
        if critic is not None:
            critic.close()
    broken = [f for f in result.failures if f.error != EMPTY]
    if broken:
        raise GenerationsFailed(
            f"cai: {len(broken)} of {result.prompts} prompts failed at a backend ({broken[0].step}, round "
            f"{broken[0].round}: {broken[0].error}); the audit and any cached responses are kept in "
            f"{ctx.output_dir}: run the same command again to redo only those"
        )
    if not result.conversations:
        raise DataError(f"cai: no prompt of {config.prompts} got a revision (every reply was empty); "
                        "check the policy and the critic")
    write_records(ctx.path("sft"), result.conversations)
    sent = policy.requests_sent + (critic.requests_sent if critic else 0)
    summary = {**result.summary(), "empty": len(result.failures), "requests_sent": sent}
    ctx.log(f"cai: {summary['revised']} of {summary['prompts']} prompts revised "
            f"({summary['empty']} left out for an empty reply; {summary['truncated']} cut at the limit)")
    return summary
