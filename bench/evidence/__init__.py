"""Seed-aware evidence: measurements per (config, fidelity, seed), their statistics, and the
sentences that answer the FAQ, computed in one place so every table, plot and sentence agrees.
Pure functions of studies: nothing here trains (bench.race does)."""

__all__ = ["answers", "budget_change", "budgets", "decisions", "gather", "measurements",
           "overfitting", "reproduction", "settings", "statistics", "targets", "whole_space",
           "whole_space_sentences", "working_effects"]
