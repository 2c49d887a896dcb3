"""Seed-aware evidence: measurements per (config, fidelity, seed), their statistics, and the
sentences that answer the FAQ, computed in one place so every table, plot and sentence agrees."""

__all__ = ["answers", "budgets", "confirm", "decisions", "measurements", "overfitting",
           "reproduction", "settings", "statistics", "summary", "whole_space",
           "whole_space_sentences", "working_effects"]
