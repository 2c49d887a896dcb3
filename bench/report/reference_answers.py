"""The reference table's answers as a reader takes them home: one table of each knob step's effect
among working networks (bench.evidence.working_effects), the failing configs as what they are, the
best configs with their intervals, and the Markdown block the README's FAQ section is pasted from
(a test holds the README to it). Every number and direction here is computed from the rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from scipy import stats

from bench.evidence import working_effects as we
from bench.evidence.answers import CLAIMS, KNOB_NAMES, capitalized
from bench.evidence.whole_space import WholeSpace
from bench.evidence.working_effects import pooling_kind
from bench.evidence.whole_space_sentences import steps_verdict, stratum_label, stratum_name
from bench.store.identity import KNOBS
from mnist_cnn.model import CNNConfig

BEST_SHOWN = 5
START, END = "<!-- reference-answers:start -->", "<!-- reference-answers:end -->"
DIRECTION_WORDS = {1: "larger more accurate", -1: "larger less accurate", 0: "no clear difference"}


def budget(epochs: float) -> str:
    return "one epoch" if epochs == 1 else f"{epochs:g} epochs"


def cell(config: pd.Series | dict, with_fc: bool = False) -> str:
    """'kernel 3, stride 2, subsampling stride 3': the pooling kind named as what it is."""
    kind = pooling_kind(config["pool_size"], config["pool_stride"])
    pooling = {"no pooling": "no pooling",
               "subsampling": f"subsampling stride {config['pool_stride']}",
               "pooling": f"pool {config['pool_size']}/{config['pool_stride']}"}[kind]
    fc = f", FC {config['fc_width']}" if with_fc else ""
    return f"kernel {config['kernel_size']}, stride {config['stride']}, {pooling}{fc}"


def step_label(knob: str, low, high) -> str:
    """'1 -> 2' for most knobs; the pooling window says what window 1 is."""
    if knob == "pool_size" and low == 1:
        return f"{low} (none or subsampling) -> {high}"
    return f"{low} -> {high}"


def signed(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:+.3f}" if abs(value) < 0.005 else f"{value:+.2f}"


# ---------------------------------------------------------------- tables

def answer_table(effects: we.WorkingEffects) -> pd.DataFrame:
    """Knob, step, effect among working networks in pp with its interval, pairs won, verdict,
    budget, the failing pairs and the all-pairs mean beside, and the knob it depends on."""
    depends = effects.dependence[effects.dependence["depends"]]
    rows = []
    for _, effect in effects.effects.iterrows():
        knob, low, high = effect["knob"], effect["low_value"], effect["high_value"]
        found = depends[(depends["knob"] == knob) & (depends["low_value"] == low)
                        & (depends["high_value"] == high)]
        rows.append({
            "knob": KNOB_NAMES[knob], "step": step_label(knob, low, high),
            "effect_pp": effect["effect_pp"], "ci_low_pp": effect["ci_low_pp"],
            "ci_high_pp": effect["ci_high_pp"],
            "pairs_won": f"{effect['wins']} of {effect['working_pairs']}",
            "verdict": DIRECTION_WORDS[we.step_direction(effect)],
            "budget": budget(effect["epochs"]), "failing_pairs": effect["failing_pairs"],
            "all_pairs_mean_pp": effect["all_pairs_mean_pp"],
            "depends_on": ", ".join(stratum_name(by) for by in found["by"]) or "-"})
    return pd.DataFrame(rows)


def answer_table_on_page(table: pd.DataFrame) -> pd.DataFrame:
    """The answer table with each effect and its interval in one column, signed, to fit a
    phone; the CSV keeps them apart."""
    effect = [f"{signed(row['effect_pp'])} ({signed(row['ci_low_pp'])} to "
              f"{signed(row['ci_high_pp'])})" for _, row in table.iterrows()]
    shown = table.drop(columns=["effect_pp", "ci_low_pp", "ci_high_pp"])
    shown.insert(2, "effect_pp_(95%_CI)", effect)
    return shown


def best_table(space: WholeSpace, shown: int = BEST_SHOWN) -> pd.DataFrame:
    """The best configs by their mean over seeds, with a Student's t interval over seeds."""
    best = space.configs.sort_values("mean", ascending=False).head(shown)
    rows = []
    for _, config in best.iterrows():
        half = (stats.t.ppf(0.975, config["seeds"] - 1) * config["sd"] / math.sqrt(config["seeds"])
                if config["seeds"] > 1 else np.nan)
        rows.append({"config": cell(config, with_fc=True), "mean_accuracy": config["mean"],
                     "ci_low_accuracy": config["mean"] - half,
                     "ci_high_accuracy": config["mean"] + half, "seeds": config["seeds"],
                     "sd_pp": config["sd"] * 100, "mflop_per_image":
                     config["flops_per_image"] / 1e6})
    return pd.DataFrame(rows)


def failing_groups(space: WholeSpace) -> pd.DataFrame:
    """The failing configs by their feature extractor (the FC widths of one together), worst
    first, with the share of the image's pixels their output reads."""
    effects = space.working
    rows = []
    shared = [k for k in KNOBS if k != "fc_width"]
    for key, group in effects.failing.groupby(shared, sort=False):
        config = dict(zip(shared, key))
        network = CNNConfig(**config, fc_width=int(group["fc_width"].iloc[0]),
                            **json.loads(group["rest"].iloc[0]))
        rows.append({"network": cell(config), "pixels_read_fraction": we.pixels_read(network),
                     "configs": len(group), "lowest_accuracy": group["mean"].min(),
                     "highest_accuracy": group["mean"].max()})
    return pd.DataFrame(rows, columns=["network", "pixels_read_fraction", "configs",
                                       "lowest_accuracy", "highest_accuracy"])


# ---------------------------------------------------------------- sentences

def seeds_each(space: WholeSpace) -> str:
    """How many seeds each config has: '3', or '2 to 3'."""
    low, high = space.configs["seeds"].min(), space.configs["seeds"].max()
    return f"{low}" if low == high else f"{low} to {high}"


def lead(space: WholeSpace) -> str:
    effects = space.working
    working = len(space.configs) - len(effects.failing)
    return (f"The {space.space} space at {budget(space.epochs)}: {len(space.configs)} configs, "
            f"{seeds_each(space)} seeds each; {working} work (their mean within {we.WORKING_GAP * 100:g} pp "
            f"of the best, {effects.best_mean * 100:.2f}%). An effect is the Hodges-Lehmann "
            "estimate of the paired differences among pairs whose configs both work, with a "
            f"{we.CONFIDENCE:.0%} bootstrap interval over clusters of configs that differ only "
            "in FC width.")


RELATION = ("How these relate to the FAQ answers of `confirm` (from a local study, when there is "
            "one): those decide single steps around one best config, on seeds that did not select "
            "it, within a stated margin; these summarize every matched pair of working networks in "
            "the whole space. A step can be undecided there and clear here, or the reverse.")


def failing_sentence(space: WholeSpace) -> str:
    effects = space.working
    groups = failing_groups(space)
    if groups.empty:
        return "Every config works."
    strides = sorted(effects.failing["stride"].unique())
    where = (f", all at conv stride {strides[0]}" if len(strides) == 1 else "")
    worst = "; ".join(
        f"{row['network']} reads {row['pixels_read_fraction']:.0%} of the pixels: "
        f"{_range(row['lowest_accuracy'], row['highest_accuracy'])}"
        for _, row in groups.head(3).iterrows())
    return (f"Failing configs, counted apart: {len(effects.failing)} of {len(space.configs)}"
            f"{where}. Worst: {worst}.")


def dependence_sentence(effects: we.WorkingEffects) -> str:
    tests = effects.dependence
    found = tests[tests["depends"]]
    head = f"Depends on another knob ({len(tests)} permutation tests, Holm-adjusted): "
    if found.empty:
        return head + "no effect depends on another knob."
    said = []
    for _, test in found.iterrows():
        strata = effects.strata[(effects.strata["knob"] == test["knob"])
                                & (effects.strata["low_value"] == test["low_value"])
                                & (effects.strata["high_value"] == test["high_value"])
                                & (effects.strata["by"] == test["by"])]
        values = ", ".join(
            f"{signed(row['effect_pp'])} pp at {stratum_label(test['by'], row['by_value'])}"
            for _, row in strata.iterrows())
        said.append(f"{KNOB_NAMES[test['knob']]} {test['low_value']} -> {test['high_value']} "
                    f"depends on {stratum_name(test['by'])} (Holm-adjusted p = "
                    f"{test['p_holm']:.3f}): {values}")
    return head + "; ".join(said) + f"; no other of the {len(tests)}."


def trend_sentence(effects: we.WorkingEffects, knob: str = "fc_width") -> str:
    """Whether the knob's effect shrinks, grows or neither with each step: said only as it is."""
    steps = effects.effects[effects.effects["knob"] == knob]
    values = steps["effect_pp"].to_numpy()
    listed = ", ".join(f"{signed(v)}" for v in values)
    if len(values) < 2:
        return ""
    change = np.diff(np.abs(values))
    trend = ("shrinks with each step" if (change < 0).all() else
             "grows with each step" if (change > 0).all() else
             "neither shrinks nor grows with each step")
    return f"{capitalized(KNOB_NAMES[knob])}: {listed} pp a step; the effect {trend}."


def claims_sentence(effects: we.WorkingEffects) -> str:
    verdicts = []
    for knob in KNOBS:
        steps = effects.effects[effects.effects["knob"] == knob]
        directions = [we.step_direction(step) for _, step in steps.iterrows()]
        verdicts.append(f"{KNOB_NAMES[knob]} {steps_verdict(directions, CLAIMS[knob].direction)}")
    return "The tutorial's claims among working networks: " + "; ".join(verdicts) + "."


def best_sentence(best: pd.DataFrame) -> str:
    top = best.iloc[0]
    return (f"Best config by its mean: {top['config']}: {top['mean_accuracy'] * 100:.2f}% "
            f"(95% t interval {top['ci_low_accuracy'] * 100:.2f} to "
            f"{top['ci_high_accuracy'] * 100:.2f}%, {top['seeds']} seeds; picked on these "
            f"seeds, so optimistic); the next {len(best) - 1} are within "
            f"{(top['mean_accuracy'] - best['mean_accuracy'].min()) * 100:.2f} pp.")


def answers_markdown(space: WholeSpace) -> str:
    """The block the README's reference section is, between its markers: regenerate it with
    `mnist-bench report` (reference_<table>_answers.md) and paste it."""
    effects = space.working
    table = answer_table(effects)
    lines = [START, lead(space), "",
             "| knob | step | effect among working networks, pp (95% CI) | pairs won | verdict "
             "| mean of all pairs, pp |", "|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        lines.append(f"| {row['knob']} | {row['step']} | {signed(row['effect_pp'])} "
                     f"({signed(row['ci_low_pp'])} to {signed(row['ci_high_pp'])}) | "
                     f"{row['pairs_won']} | {row['verdict']} | "
                     f"{signed(row['all_pairs_mean_pp'])} |")
    lines += ["", *[f"- {line}" for line in (
        failing_sentence(space), dependence_sentence(effects), trend_sentence(effects),
        claims_sentence(effects), best_sentence(best_table(space))) if line], END]
    return "\n".join(lines) + "\n"


def _range(low: float, high: float) -> str:
    return (f"{low * 100:.1f}%" if round(low, 3) == round(high, 3)
            else f"{low * 100:.1f} to {high * 100:.1f}%")
