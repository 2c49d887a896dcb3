"""Sentences from the evidence: the headline (best config, its ties, the one to use) and one
answer per FAQ knob with a verdict on the tutorial's claim. Each sentence is built from the
numbers of the row it describes, and the words that compare (more, fewer, higher) come from
comparing those numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.evidence.statistics import (
    INTERVAL_METHOD, MIN_SEEDS, PAIRED_METHOD, TIE_METHOD,
)

KNOB_NAMES = {"kernel_size": "conv kernel size", "stride": "conv stride",
              "pool_size": "pooling window", "pool_stride": "pool stride", "fc_width": "FC width"}


@dataclass(frozen=True)
class Claim:
    """The tutorial's claim about a knob: `direction` +1 says larger values are more accurate,
    -1 says they are less accurate."""

    text: str
    direction: int


CLAIMS = {
    "kernel_size": Claim("bigger kernels perform better", +1),
    "stride": Claim("too large a stride filters out important features", -1),
    "pool_size": Claim("bigger pooling windows perform better", +1),
    "pool_stride": Claim("too large a stride loses information", -1),
    "fc_width": Claim("a bigger FC layer performs better", +1),
}
OVERFIT_CLAIM = "a large FC layer overfits"
SUPPORTED, CONTRADICTED, MIXED, NOISE = ("supported", "contradicted", "mixed",
                                         "not distinguishable from noise")


def describe(row: pd.Series | dict, skip: str | None = None) -> str:
    """A config in the FAQ's words: kernel 5, stride 1, pool 2/2, FC 256 (and its training
    settings, where the configs compared differ in them)."""
    parts = {"kernel_size": f"kernel {row['kernel_size']}", "stride": f"stride {row['stride']}",
             "pool": ("no pooling" if row["pool_size"] == 1 and row["pool_stride"] == 1
                      else f"pool {row['pool_size']}/{row['pool_stride']}"),
             "fc_width": f"FC {row['fc_width']}"}
    if skip in ("pool_size", "pool_stride"):
        other = "pool_stride" if skip == "pool_size" else "pool_size"
        parts["pool"] = f"pool {'stride' if other == 'pool_stride' else 'size'} {row[other]}"
    training = row.get("training_label")
    if isinstance(training, str) and training:  # named where configs differ in training
        parts["training"] = training
    return ", ".join(text for key, text in parts.items() if key != skip)


def pct(fraction: float) -> str:
    return f"{fraction * 100:.2f}%"


def pp(difference: float) -> str:
    return f"{difference * 100:+.2f} pp"


def mflop(flops: float) -> str:
    return f"{flops / 1e6:.1f} MFLOP"


def ratio(low: float, high: float, unit: str) -> str:
    """'1.9x more' or '2.0x fewer' or 'the same', from the two numbers themselves."""
    if pd.isna(low) or pd.isna(high) or not low or not high:
        return f"{unit} not measured"
    if high == low:
        return f"the same {unit}"
    factor = max(high, low) / min(high, low)
    return f"{factor:.2f}x {'more' if high > low else 'fewer'} {unit}"


def measured(row: pd.Series) -> str:
    """Mean with its interval and n, or the single value labelled as such."""
    if row["seeds"] >= MIN_SEEDS:
        return (f"{pct(row['mean'])} (95% CI {pct(row['ci_low'])} to {pct(row['ci_high'])}, "
                f"n={row['seeds']} seeds)")
    return f"{pct(row['mean'])} (single seed, n=1, no interval)"


def headline(ranked: pd.DataFrame) -> list[str]:
    """The best config by mean over seeds, the configs tied with it, and the one to use."""
    best = ranked[ranked["is_best"]].iloc[0]
    lines = []
    if best["seeds"] >= MIN_SEEDS:
        lines.append(f"Best config by mean validation accuracy over seeds: {describe(best)}: "
                     f"{measured(best)}, {mflop(best['flops_per_image'])} per image "
                     f"({INTERVAL_METHOD}).")
    else:
        lines.append(f"Best config, single seed: {describe(best)}: {measured(best)}; every "
                     "config was measured once, and seed noise is about 0.1 pp: run `mnist-bench "
                     "confirm` to measure the top configs with more seeds.")
    tied = ranked[ranked["tied_with_best"] & ~ranked["is_best"]]
    if best["seeds"] >= MIN_SEEDS:
        if len(tied):
            listed = "; ".join(f"{describe(row)}: {measured(row)}, p={row['p_vs_best']:.2f}"
                               for _, row in tied.sort_values("mean", ascending=False).iterrows())
            lines.append(f"Statistically tied with it ({TIE_METHOD}): {len(tied)} config"
                         f"{'s' if len(tied) != 1 else ''}: {listed}.")
        else:
            lines.append(f"No other config with {MIN_SEEDS}+ seeds is tied with it ({TIE_METHOD}).")
    use = ranked[ranked["recommended"]].iloc[0]
    if use["config_id"] == best["config_id"]:
        lines.append(f"The one to use: {describe(best)}, the cheapest of the best and its ties "
                     f"({mflop(best['flops_per_image'])} per image).")
    else:
        lines.append(f"The one to use: {describe(use)}: {measured(use)}, tied with the best at "
                     f"{mflop(use['flops_per_image'])} per image against "
                     f"{mflop(best['flops_per_image'])} "
                     f"({ratio(use['flops_per_image'], best['flops_per_image'], 'FLOPs')} for the "
                     f"best).")
    candidates = ranked[ranked["tied_with_best"]].dropna(subset=["latency_ms_batch1"])
    if len(candidates) > 1:
        fastest = candidates.sort_values("latency_ms_batch1", kind="stable").iloc[0]
        lines.append(f"Fastest of the best and its ties at batch 1: {describe(fastest)}, "
                     f"{fastest['latency_ms_batch1']:.3g} ms per image.")
    single = ranked[ranked["seeds"] < MIN_SEEDS]
    if len(single) and best["seeds"] >= MIN_SEEDS:
        lines.append(f"{len(single)} of {len(ranked)} distinct configs were measured with a single "
                     "seed: their values carry no interval and are not tested against the best.")
    return lines


def knob_answer(knob: str, pairs: pd.DataFrame) -> list[str]:
    """The knob's verdict on the tutorial's claim, then one line per paired comparison."""
    name, claim = KNOB_NAMES[knob], CLAIMS[knob]
    if pairs.empty:
        return [f"{capitalized(name)}: no two measured configs differ only in {name} with "
                f"{MIN_SEEDS}+ seeds in common, so the tutorial's claim \"{claim.text}\" is "
                "untested: run `mnist-bench confirm` (it sweeps each knob around the best config)."]
    verdict = claim_verdict(pairs["effect"].to_numpy(), claim.direction)
    counts = _effect_counts(pairs["effect"].to_numpy(), "larger value more accurate",
                            "larger value less accurate")
    lines = [f"{capitalized(name)}: the tutorial's claim \"{claim.text}\" is {verdict} "
             f"({counts}; {PAIRED_METHOD})."]
    lines += [pair_sentence(row) for _, row in pairs.iterrows()]
    if knob == "fc_width":
        gap_verdict = claim_verdict(pairs["gap_effect"].to_numpy(), +1)
        gap_counts = _effect_counts(pairs["gap_effect"].to_numpy(), "wider FC wider gap",
                                    "wider FC narrower gap")
        lines.append(f"FC width and over-fitting: the tutorial's claim \"{OVERFIT_CLAIM}\" is "
                     f"{gap_verdict} by the gap between validation and training loss at the end "
                     f"of training ({gap_counts}; "
                     + "; ".join(f"FC {row['low_value']} -> {row['high_value']}: gap "
                                 f"{row['gap_difference']:+.4f} (CI {row['gap_ci_low']:+.4f} to "
                                 f"{row['gap_ci_high']:+.4f})" for _, row in pairs.iterrows())
                     + ").")
    return lines


def claim_verdict(effects: np.ndarray, direction: int) -> str:
    """Supported when every clear effect goes the claimed way, contradicted when every one goes
    the other way, mixed when both occur, and noise when no interval excludes zero."""
    agree = int(np.sum(effects == direction))
    disagree = int(np.sum(effects == -direction))
    if agree and disagree:
        return MIXED
    if agree:
        return SUPPORTED
    if disagree:
        return CONTRADICTED
    return NOISE


def _effect_counts(effects: np.ndarray, up: str, down: str) -> str:
    total = len(effects)
    return (f"{total} paired comparison{'s' if total != 1 else ''}: {int(np.sum(effects == 1))} "
            f"{up}, {int(np.sum(effects == -1))} {down}, {int(np.sum(effects == 0))} within noise")


def pair_sentence(row: pd.Series) -> str:
    """One paired comparison, its interval and the exact cost of both configs."""
    knob = row["knob"]
    fixed = describe({**row["fixed"], knob: row["low_value"],
                      "training_label": row.get("training_label", "")}, skip=knob)
    if row["effect"] > 0:
        outcome = f"{knob_label(knob, row['high_value'])} is more accurate"
    elif row["effect"] < 0:
        outcome = f"{knob_label(knob, row['high_value'])} is less accurate"
    else:
        outcome = "within noise"
    return (f"{knob_label(knob, row['low_value'])} -> {row['high_value']} ({fixed}): "
            f"{pct(row['low_mean'])} -> {pct(row['high_mean'])}, difference {pp(row['difference'])} "
            f"({row['confidence']:.1%} CI {pp(row['ci_low'])} to {pp(row['ci_high'])}, "
            f"n={row['pairs']} paired seeds): {outcome}; "
            f"{mflop(row['low_flops_per_image'])} -> {mflop(row['high_flops_per_image'])} per image "
            f"({ratio(row['low_flops_per_image'], row['high_flops_per_image'], 'FLOPs')}), "
            f"{row['low_parameters']:,.0f} -> {row['high_parameters']:,.0f} parameters "
            f"({ratio(row['low_parameters'], row['high_parameters'], 'parameters')}).")


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def knob_label(knob: str, value) -> str:
    return f"{KNOB_NAMES[knob]} {value}"
