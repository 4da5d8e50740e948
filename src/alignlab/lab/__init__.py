"""The laboratory: a synthetic world with a gold standard, small enough for a laptop CPU.

- `world`: invented towns (river, founder, product), sums and hazards, split into train / eval
  entities, deterministic from a seed.
- `corpus`: the "web-like" pretraining documents (facts, recipes, mostly unanswered questions).
- `tasks` (with `knowledge_tasks`, `safety_tasks`, `sample`): the request families with their
  gold behaviour, SFT demonstrations (optionally flawed) and held-out eval prompts.
- `judges`: exact scorers and the configurable gold utility.
- `labellers`: simulated labellers with tunable noise and biases producing `PreferencePair`s.
- `build`: writes the data artefacts a pipeline stage needs.
- `stages`: the lab's recipe stages (world, preference pairs, gold-judge evals). The tokenizer and
  the ~1 M parameter base model come from the generic `pretrain` stage, as for any corpus.

Importing this package is cheap: torch and transformers load only inside the stages.
"""
