"""bench: Optuna studies, the runner, reports and the command line."""
