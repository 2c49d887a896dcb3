"""The search: a space file, an Optuna study and the runner that trains its trials."""

__all__ = ["interrupt", "objective", "runner", "settings", "spaces", "study"]
