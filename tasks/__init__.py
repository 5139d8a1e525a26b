"""Runnable tasks built on keras_lstm: `python -m tasks.<name> --help`."""
