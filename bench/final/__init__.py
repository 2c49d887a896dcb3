"""The final model: train, finetune and evaluate a chosen config; only here is the test set read."""

__all__ = ["evaluate", "finetune", "train_run"]
