"""The words shared by every whole-space answer (bench.evidence.whole_space computes them): the
scope of a table, a claim's verdict over its steps, the knob importance, and how a stratum is
named, so the report's tables, sentences and plots say them alike."""

from __future__ import annotations

from typing import Any

from bench.evidence.answers import KNOB_NAMES
from bench.evidence.whole_space import IMPORTANCE_METHOD, POOLING, WholeSpace


def scope(space: WholeSpace) -> str:
    """'over the whole faq space, at one epoch, 66 configs, 1 seed each'."""
    epochs = "one epoch" if space.epochs == 1 else f"{space.epochs:g} epochs"
    low, high = space.configs["seeds"].min(), space.configs["seeds"].max()
    seeds = f"{low}" if low == high else f"{low} to {high}"
    return (f"over the whole {space.space} space, at {epochs}, {len(space.configs)} configs, "
            f"{seeds} seed{'' if high == 1 else 's'} each")


def steps_verdict(effects: list[int], direction: int) -> str:
    """The tutorial's claim against the steps' effects: supported or contradicted at every step,
    at some (the others unclear), mixed, or not shown."""
    agree, against = effects.count(direction), effects.count(-direction)
    if not effects:
        return "untested (no matched pairs)"
    if agree and against:
        return f"mixed (supported at {agree}, contradicted at {against} of {len(effects)} steps)"
    for count, word in ((agree, "supported"), (against, "contradicted")):
        if count:
            return word if count == len(effects) else f"{word} at {count} of {len(effects)} steps"
    return "not shown (no step has a clear difference)"


def importance_sentence(space: WholeSpace) -> str:
    if not space.importance:
        return (f"Knob importance, {scope(space)}: too few configs to rank ({IMPORTANCE_METHOD}).")
    ranked = ", ".join(f"{KNOB_NAMES[k]} {v:.2f}" for k, v in space.importance.items())
    return f"Knob importance, {scope(space)}: {ranked} ({IMPORTANCE_METHOD})."


def stratum_name(by: str) -> str:
    return "the pooling kind (none, subsampling, pooling)" if by == POOLING else KNOB_NAMES[by]


def stratum_label(by: str, value: Any) -> str:
    """'conv stride 1', 'FC width 128', 'subsampling'."""
    return str(value) if by == POOLING else f"{KNOB_NAMES[by]} {value}"
