"""Sampling backends: an in-process Hugging Face model (and, later, OpenAI-compatible endpoints)."""
