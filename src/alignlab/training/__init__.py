"""The one training loop (`loop.train`) and one small step-function module per method."""
