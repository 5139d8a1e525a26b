"""Sentiment task: python -m tasks.sentiment --help."""
