"""Evaluation suites, scorers and attacks."""
