"""Feedback: constitutions, critique-and-revise, AI labellers, and agreement statistics between labellers.

- `agreement`: agreement statistics (pairwise agreement, Cohen's and Fleiss' kappa, Krippendorff's
  alpha, position-bias and tie rates) as pure functions, the same for human and AI labellers;
- `constitution`, `published`: constitutions in our YAML and the published Constitutional AI files;
- `critique`: critique and revise (SL-CAI), supervised data with every step audited;
- `judge`, `hf_choice`, `rlaif`: the AI labeller (RL-CAI / RLAIF), both orders, soft labels;
- `labeller`: the `Labeller` protocol every source of preference labels satisfies;
- `audit`: AI labels against human or gold labels;
- `backends`, `inputs`, `cai_stage`, `rlaif_stage`: the `cai` and `rlaif` stage kinds (a model
  directory or an OpenAI-compatible endpoint as policy, critic or judge). See docs/constitutional-ai.md.
"""
