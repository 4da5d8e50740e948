"""The stage kinds a recipe or a stage command can run: plain data, read by the runner, CLI and docs.

Each kind names its config model, its runner as "module:function" (imported only when the stage
runs, so validating a recipe never imports torch), a one-line help, and the artefacts it writes
(name -> path in the stage directory, and what it is): recipes name them as `${stage.artefact}`,
the run index records them, and runners find their file names here (`StageContext.path`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from alignlab.config import (
    DPOConfig,
    GRPOConfig,
    PPOConfig,
    PretrainConfig,
    RewardModelConfig,
    RLOOConfig,
    ScoreConfig,
    SFTConfig,
)
from alignlab.config.evals import EvalConfig
from alignlab.config.feedback import CAIConfig, RLAIFConfig
from alignlab.config.overopt import BestOfNConfig, OveroptimisationConfig
from alignlab.config.report import ReportConfig
from alignlab.distributed import run_on_main
from alignlab.errors import ConfigError
from alignlab.lab.config import LabEvalConfig, LabPairsConfig, LabWorldConfig
from alignlab.lab.feedback_config import LabCompareConfig, LabJudgeDataConfig, LabReviserDataConfig
from alignlab.stage_io import Artefact, StageContext

MODEL = Artefact(".", "model", "Hugging Face model directory (or PEFT adapter) with its tokenizer.")
METRICS = Artefact("metrics.jsonl", "metrics", "One line per logged training step.")
# What every online RL stage writes besides its policy (ppo adds the value model).
RL_OUTPUTS = {
    "model": MODEL, "metrics": METRICS,
    "samples": Artefact("samples.jsonl", "jsonl", "Prompts, replies, each reward and the KL of rollouts."),
    "snapshots": Artefact("snapshots", "models", "The policy every logging.snapshot_every steps (step-N/)."),
    "eval_samples": Artefact("eval_samples.jsonl", "jsonl", "Every held-out reply of every evaluation "
                             "(logging.eval_prompts): step, prompt id, reply, each reward, KL, length."),
}
HTTP_CACHE = Artefact("http_cache", "dir", "An endpoint's responses, so a re-run sends nothing twice.")


@dataclass(frozen=True)
class StageKind:
    name: str
    config: type[BaseModel]
    runner: str  # "module:function" taking (config, StageContext) and returning a summary dict
    help: str
    outputs: dict[str, Artefact] = field(default_factory=dict)
    # Under a multi-process launch: True runs the stage on every process (it trains collectively
    # and writes its files from the main one); False runs it on the main process while the others wait.
    all_processes: bool = False
    # "module:function" turning the stage's summary into a table for the terminal (or None).
    show: str | None = None


STAGE_KINDS: dict[str, StageKind] = {
    k.name: k
    for k in [
        StageKind(
            "pretrain", PretrainConfig, "alignlab.training.pretrain:run_pretrain",
            "Causal LM on raw text: a new tokenizer + model from scratch, or continued pretraining.",
            {"model": MODEL, "metrics": METRICS,
             "corpus_stats": Artefact("corpus_stats.json", "json", "Documents and tokens trained on.")},
            all_processes=True,
        ),
        StageKind(
            "sft", SFTConfig, "alignlab.training.sft:run_sft", "Instruction tuning on conversations.",
            {"model": MODEL, "metrics": METRICS}, all_processes=True,
        ),
        StageKind(
            "rm", RewardModelConfig, "alignlab.training.reward:run_reward_model",
            "Reward model (Bradley-Terry, optional ensemble) on preference pairs, with a report.",
            {"model": Artefact(".", "reward_model", "Sequence-classification model(s) + reward_model.json."),
             "report": Artefact("report.json", "json", "Held-out accuracy, calibration, length correlation."),
             "metrics": METRICS},
            all_processes=True,
        ),
        StageKind(
            "score", ScoreConfig, "alignlab.scoring:run_score",
            "Score (prompt, response) records with a reward model into scores.jsonl.",
            {"scores": Artefact("scores.jsonl", "jsonl", "Each record with its reward(s).")},
        ),
        StageKind(
            "dpo", DPOConfig, "alignlab.training.dpo:run_dpo",
            "Align a policy on preferences with a registered DPO-family loss (`alignlab losses`).",
            {"model": MODEL, "metrics": METRICS,
             "reference_logps": Artefact("reference_logps.safetensors", "safetensors",
                                         "Cached reference log-probs (losses with a reference).")},
            all_processes=True,
        ),
        StageKind(
            "ppo", PPOConfig, "alignlab.training.ppo:run_ppo",
            "Online RL with PPO: a KL penalty in the reward, a value model and GAE, against reward models or "
            "rule rewards.",
            {**RL_OUTPUTS, "value_model": Artefact("value_model", "model",
                                                   "The critic (one-label token-classification model).")},
            all_processes=True,
        ),
        StageKind(
            "grpo", GRPOConfig, "alignlab.training.grpo:run_grpo",
            "Online RL with GRPO: group-normalised rewards of several replies per prompt, KL in the loss.",
            RL_OUTPUTS, all_processes=True,
        ),
        StageKind(
            "rloo", RLOOConfig, "alignlab.training.rloo:run_rloo",
            "Online RL with RLOO: REINFORCE with a leave-one-out baseline over several replies per prompt.",
            RL_OUTPUTS, all_processes=True,
        ),
        StageKind(
            "cai", CAIConfig, "alignlab.feedback.cai_stage:run_cai",
            "Constitutional AI (SL-CAI): critique and revise responses under a constitution; SFT data.",
            {"sft": Artefact("sft.jsonl", "jsonl", "Prompt + final revision per prompt, for the sft stage."),
             "audit": Artefact("audit.jsonl", "jsonl", "Every response, critique, revision and failure."),
             "cache": HTTP_CACHE},
        ),
        StageKind(
            "rlaif", RLAIFConfig, "alignlab.feedback.rlaif_stage:run_rlaif",
            "AI preference labels (RLAIF / RL-CAI): a judge compares pairs in both orders; audited.",
            {"pairs": Artefact("pairs.jsonl", "jsonl", "Preference pairs with confidences, for rm / dpo."),
             "audit": Artefact("audit.jsonl", "jsonl", "One judgement per pair: both orders, replies, p."),
             "agreement": Artefact("agreement.json", "json",
                                   "AI labels against the reference and input labels: accuracy, kappa, "
                                   "position bias, disagreements."),
             "cache": HTTP_CACHE},
        ),
        StageKind(
            "best_of_n", BestOfNConfig, "alignlab.evals.best_of_n_stage:run_best_of_n",
            "N replies per held-out prompt, every reward of each, and best-of-n by one reward for n = 1, 2, "
            "4, ... N; other policies scored beside it with their KL.",
            {"samples": Artefact("samples.jsonl", "jsonl", "Per policy and prompt: the replies, each reward "
                                 "and length (and KL) of every one."),
             "results": Artefact("results.json", "json", "The best-of-n curve and the other policies' "
                                 "figures, with intervals.")},
        ),
        StageKind(
            "overoptimisation", OveroptimisationConfig,
            "alignlab.evals.overoptimisation:run_overoptimisation",
            "Proxy reward and gold utility against KL from the reference, from RL runs' held-out evaluations "
            "and best-of-n (the report's over-optimisation curve).",
            {"curve": Artefact("overoptimisation.json", "json", "Points {kl, proxy, gold, label, series} "
                               "with intervals (docs/report.md).")},
            show="alignlab.evals.terminal:curve_table",
        ),
        StageKind(
            "lab_world", LabWorldConfig, "alignlab.lab.stages:run_lab_world",
            "Laboratory: build the synthetic world, its corpus, SFT demonstrations and eval prompts.",
            {"world": Artefact("world.json", "json", "Every entity and fact."),
             "corpus": Artefact("corpus.jsonl", "jsonl", "Pretraining documents ({text})."),
             "sft": Artefact("sft.jsonl", "jsonl", "SFT demonstrations ({messages})."),
             "eval": Artefact("eval.jsonl", "jsonl", "Held-out prompts with their gold fields."),
             "rl_prompts": Artefact("rl_prompts.jsonl", "jsonl",
                                    "Training prompts for online RL with their gold fields."),
             "manifest": Artefact("manifest.json", "json", "Configs, their hash and counts.")},
        ),
        StageKind(
            "lab_pairs", LabPairsConfig, "alignlab.lab.stages:run_lab_pairs",
            "Laboratory: sample response pairs from a policy and label them with simulated labellers.",
            {"pairs": Artefact("pairs.jsonl", "jsonl", "Preference pairs from the simulated labellers."),
             "gold_pairs": Artefact("gold_pairs.jsonl", "jsonl",
                                    "The same comparisons labelled by gold utility.")},
        ),
        StageKind(
            "lab_eval", LabEvalConfig, "alignlab.lab.stages:run_lab_eval",
            "Laboratory: generate on held-out prompts of every family and score with the gold judges.",
            {"scores": Artefact("scores.json", "json",
                                "Per model and family: gold behaviour rate, utility.")},
            show="alignlab.lab.report:family_table",
        ),
        StageKind(
            "eval", EvalConfig, "alignlab.evals.stage:run_eval",
            "Run eval suites (`alignlab eval --list`) on checkpoints, endpoints or files of responses.",
            {"results": Artefact("results.json", "json", "Every suite's figures per checkpoint, headline "
                                 "figures, and paired differences between checkpoints."),
             "suites": Artefact(".", "eval_suites", "<checkpoint>/<suite>/samples.jsonl + summary.json, "
                                "per checkpoint and suite.")},
            show="alignlab.evals.terminal:headline_table",
        ),
        StageKind(
            "report", ReportConfig, "alignlab.report.stage:run_report",
            "Write the run's HTML report (configs, curves, evals side by side, plots) once its stages "
            "are done.",
            {"report": Artefact("report.html", "html", "The run's self-contained HTML report.")},
        ),
        StageKind(
            "lab_judge_data", LabJudgeDataConfig, "alignlab.lab.judge_data:run_lab_judge_data",
            "Laboratory: SFT data teaching a model to judge pairs in the AI judge's prompt (gold labels).",
            {"sft": Artefact("judge_sft.jsonl", "jsonl", "Comparison prompt -> `Answer: A` / `Answer: B`.")},
        ),
        StageKind(
            "lab_reviser_data", LabReviserDataConfig, "alignlab.lab.reviser_data:run_lab_reviser_data",
            "Laboratory: SFT data that teaches a model to critique and revise; prompts kept apart for cai.",
            {"sft": Artefact("reviser_sft.jsonl", "jsonl", "Critique and revision steps (only_last_turn)."),
             "prompts": Artefact("prompts.jsonl", "jsonl", "Training prompts the reviser never saw.")},
        ),
        StageKind(
            "lab_compare", LabCompareConfig, "alignlab.lab.compare:run_lab_compare",
            "Laboratory: gold-judged gains and losses of policies and of critique-and-revise; intervals.",
            {"figures": Artefact("figures.json", "json", "Rates, utilities and paired differences with n.")},
        ),
    ]
}


def get_stage_kind(name: str) -> StageKind:
    try:
        return STAGE_KINDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown stage kind '{name}'; valid kinds: {', '.join(sorted(STAGE_KINDS))}"
        ) from None


def stage_context(kind: str, output_dir: Path, *, name: str | None = None, run_dir: Path | None = None,
                  log=print) -> StageContext:
    """The context a runner of `kind` gets, with its declared outputs."""
    return StageContext(name or kind, Path(output_dir), run_dir, log, get_stage_kind(kind).outputs)


def _import(ref: str) -> Any:
    module, func = ref.split(":")
    return getattr(importlib.import_module(module), func)


def quiet_libraries() -> None:
    """Our progress bar and log lines are the user's view; silence the libraries' own chatter
    (weight-loading bars, accelerate's note on tied weights at every checkpoint)."""
    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    for name in ("accelerate.checkpointing", "accelerate.accelerator", "accelerate.utils.other"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_stage(kind: StageKind, config: BaseModel, ctx: StageContext) -> dict[str, Any]:
    """Run one stage; under a multi-process launch on every process or on the main one (see StageKind)."""
    quiet_libraries()
    runner = _import(kind.runner)
    if kind.all_processes:
        return runner(config, ctx) or {}
    return run_on_main(lambda: runner(config, ctx), f"stage {ctx.name}") or {}


def show_summary(kind: StageKind, stage: str, summary: dict[str, Any]) -> Any | None:
    """The kind's terminal view of a finished stage's summary (a rich renderable), if it has one."""
    return _import(kind.show)(stage, summary) if kind.show else None
