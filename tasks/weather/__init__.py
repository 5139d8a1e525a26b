"""Weather forecasting task: `python -m tasks.weather --help`."""
