"""alignlab: post-training toolkit (SFT, preference data, reward models, RLHF, DPO family, evals).

Importing the package is cheap: heavy backends (torch, transformers, peft) load where they are used.
"""

__version__ = "0.1.0"
