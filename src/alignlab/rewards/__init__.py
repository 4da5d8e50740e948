"""Rewards for online RL: what a completion of a prompt is worth, one number per completion.

One job per module: `base` (the inputs every reward gets, the `Reward` protocol, the checks that
stop a run on a bad reward), `functions` (rule rewards from `path.py:fn` or `module:fn`), `models`
(reward models and ensembles from `alignlab rm`, scored with their own tokenizer and template),
`gold` (the lab's gold judge as an oracle), `combine` (weighted sums, a length penalty, running
normalisation and clipping, with a `state_dict` for exact resume) and `build` (components from
the `rewards` config section).
"""
