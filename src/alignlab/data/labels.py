"""The label of positions that take no loss (prompt, padding, a packed row's first token)."""

# PyTorch's cross_entropy ignores this target by default; every collator and loss uses it.
IGNORE_INDEX = -100
