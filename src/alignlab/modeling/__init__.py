"""Models: loading (local dir or hub), LoRA, tiny from-scratch models, sequence log-probs."""
