"""Data: the schema every stage shares, readers for real formats, chat templating, collators."""
