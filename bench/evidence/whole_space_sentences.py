"""The whole-space answers as sentences (bench.evidence.whole_space computes them): each built
from the row it describes, so a sentence and the numbers beside it cannot disagree."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bench.evidence.answers import CLAIMS, KNOB_NAMES, capitalized, pp
from bench.evidence.whole_space import (CONFIDENCE, IMPORTANCE_METHOD, INTERACTION_METHOD, METHOD,
                                        POOLING, WholeSpace)


def scope(space: WholeSpace) -> str:
    """'over the whole faq space, at one epoch, 66 configs, 1 seed each'."""
    epochs = "one epoch" if space.epochs == 1 else f"{space.epochs:g} epochs"
    low, high = space.configs["seeds"].min(), space.configs["seeds"].max()
    seeds = f"{low}" if low == high else f"{low} to {high}"
    return (f"over the whole {space.space} space, at {epochs}, {len(space.configs)} configs, "
            f"{seeds} seed{'' if high == 1 else 's'} each")


def header(space: WholeSpace) -> list[str]:
    """The label of every whole-space answer, its methods, and what was left out."""
    lines = [f"Answers {scope(space)} (not the local answers of confirm): {METHOD}; "
             f"{INTERACTION_METHOD}."]
    return lines + ([capitalized(space.note) + "."] if space.note else [])


def step_effect(step: pd.Series | dict) -> int:
    """+1 when the larger value is more accurate (interval above zero and most pairs won), -1
    when less accurate (interval below zero and most pairs lost), 0 when neither."""
    if step["ci_low"] > 0 and step["wins"] > step["pairs"] / 2:
        return 1
    if step["ci_high"] < 0 and step["losses"] > step["pairs"] / 2:
        return -1
    return 0


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


def knob_sentences(space: WholeSpace, knob: str) -> list[str]:
    """The knob's verdict on the tutorial's claim, a line per step, and where it depends."""
    name, claim = KNOB_NAMES[knob], CLAIMS[knob]
    steps = space.steps[space.steps["knob"] == knob]
    verdict = steps_verdict([step_effect(step) for _, step in steps.iterrows()], claim.direction)
    lines = [f"{capitalized(name)}, {scope(space)}: the tutorial's claim \"{claim.text}\" is "
             f"{verdict} ({len(steps)} neighbouring step{'s' if len(steps) != 1 else ''}, "
             f"{int(steps['pairs'].sum())} matched pairs)."]
    for _, step in steps.iterrows():
        lines.append(_step_sentence(name, step))
        chosen = space.spreads[(space.spreads["knob"] == knob) & space.spreads["chosen"]
                               & (space.spreads["low_value"] == step["low_value"])
                               & (space.spreads["high_value"] == step["high_value"])]
        if len(chosen):
            lines.append(_depends_sentence(space, chosen.iloc[0]))
    return lines


def importance_sentence(space: WholeSpace) -> str:
    if not space.importance:
        return (f"Knob importance, {scope(space)}: too few configs to rank ({IMPORTANCE_METHOD}).")
    ranked = ", ".join(f"{KNOB_NAMES[k]} {v:.2f}" for k, v in space.importance.items())
    return f"Knob importance, {scope(space)}: {ranked} ({IMPORTANCE_METHOD})."


def _step_sentence(name: str, step: pd.Series) -> str:
    effect = step_effect(step)
    if step["pairs"] < 2:
        outcome = "one pair, no interval"
    elif effect:
        outcome = f"the larger value {'more' if effect > 0 else 'less'} accurate"
    elif step["ci_low"] > 0 or step["ci_high"] < 0:
        outcome = "unclear: the interval excludes zero but most pairs do not agree"
    else:
        outcome = "no clear difference: the interval holds zero"
    return (f"{capitalized(name)} {step['low_value']} -> {step['high_value']}: the larger value "
            f"more accurate in {step['wins']} of {step['pairs']} matched pairs, less in "
            f"{step['losses']}, tied in {step['ties']}; mean difference {pp(step['mean'])}"
            f"{_interval(step)}: {outcome}.")


def _depends_sentence(space: WholeSpace, spread: pd.Series) -> str:
    top, bottom = (stratum(space, spread, spread[end]) for end in ("top_value", "bottom_value"))
    step = (f"{capitalized(KNOB_NAMES[spread['knob']])} {spread['low_value']} -> "
            f"{spread['high_value']}")
    lead = (f"{step} depends on {stratum_name(spread['by'])}" if spread["depends"] else
            f"{step}, most different by {stratum_name(spread['by'])} but with overlapping "
            "intervals (no clear dependence)")
    return (f"{lead}: {pp(top['mean'])} at {stratum_label(spread['by'], top['by_value'])}"
            f"{_interval(top)}, {pp(bottom['mean'])} at "
            f"{stratum_label(spread['by'], bottom['by_value'])}{_interval(bottom)}; spread "
            f"{spread['spread'] * 100:.2f} pp.")


def stratum(space: WholeSpace, step: pd.Series | dict, value: Any) -> dict[str, Any]:
    """The strata row of a step (knob, low_value, high_value, by) at one value of `by`."""
    strata = space.strata
    match = strata[(strata["knob"] == step["knob"]) & (strata["low_value"] == step["low_value"])
                   & (strata["high_value"] == step["high_value"]) & (strata["by"] == step["by"])
                   & (strata["by_value"] == value)]
    return match.to_dict("records")[0]


def _interval(summary: pd.Series | dict) -> str:
    count = int(summary["pairs"])
    pairs = f"n={count} pair{'s' if count != 1 else ''}"
    if math.isnan(summary["ci_low"]):
        return f" ({pairs}, no interval)"
    return (f" ({CONFIDENCE:.0%} bootstrap CI {pp(summary['ci_low'])} to {pp(summary['ci_high'])}, "
            f"{pairs})")


def stratum_name(by: str) -> str:
    return "the pooling kind (none, subsampling, pooling)" if by == POOLING else KNOB_NAMES[by]


def stratum_label(by: str, value: Any) -> str:
    """'conv stride 1', 'FC width 128', 'subsampling'."""
    return str(value) if by == POOLING else f"{KNOB_NAMES[by]} {value}"
