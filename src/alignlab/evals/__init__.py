"""Evaluation suites in the Inspect shape: samples + a solver (how the model is asked) + scorers.

Public API (import from the modules; this package imports nothing heavy):
- `registry`: `suite_names()`, `describe_suites()`, `get_suite_spec(name)`, `build_suite(name, data, *, limit,
  **options)`; `register_suite` for new suites;
- `runner`: `run_suite(suite, model, output_dir, *, params, chunk_size, log) -> SuiteSummary`, writing
  `samples.jsonl` (one line per sample, solver variant and draw) and `summary.json`;
- `core`: `Sample`, `Dialogue`, `Transcript`, `Episode`, `Score`, `Result`, `Suite`, `Figure`, the `Solver`
  and `Scorer` protocols; `solvers`, `scorers`, `judges`, `transforms` hold the building blocks;
- `responses.ResponsesFile`: a file of existing responses as a `Generator`;
- `likelihood`: the `LogLikelihood` protocol and `HFLogLikelihood` (in-process model);
- `datasets`: readers of XSTest, OR-Bench, AdvBench, HarmBench and TruthfulQA files;
- `refusal.classify_refusal`: the three-class refusal classifier.
See docs/evals.md.
"""
