"""Character-level text generation on Shakespeare (python -m tasks.text_generation)."""
