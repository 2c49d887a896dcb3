"""Sentences from the evidence: the headline (the best config, every decision against it, the one
to use) and one
answer per FAQ knob with a verdict on the tutorial's claim. Each sentence is built from the
numbers of the row it describes, and the words that compare (more, fewer, higher) come from
comparing those numbers."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.evidence import decisions
from bench.evidence.decisions import MIN_SEEDS
from bench.evidence.statistics import INTERVAL_METHOD, PAIRED_METHOD
from bench.store.wording import counted, mflop, pct, pp, ratio, within

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
SUPPORTED, CONTRADICTED, MIXED, NO_EFFECT, UNDECIDED = (
    "supported", "contradicted", "mixed", "contradicted: no practical difference",
    "undecided")


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


def measured(row: pd.Series) -> str:
    """Held-out mean with its interval and n, or the search's own value labelled as such."""
    if row["heldout_seeds"] >= MIN_SEEDS:
        text = (f"{pct(row['mean'])} (95% CI {pct(row['ci_low'])} to {pct(row['ci_high'])}, "
                f"n={row['heldout_seeds']} held-out seeds)")
    elif row["heldout_seeds"] == 1:
        text = f"{pct(row['mean'])} (one held-out seed, no interval)"
    else:
        return f"{pct(row['mean'])} (the search's own value, not held out, no interval)"
    if not pd.isna(row.get("selection_value")):
        text += f"; the search's value {pct(row['selection_value'])}"
    return text


def versus_best(row: pd.Series) -> str:
    """A config's decision against the best, with its interval, or what would decide it."""
    margin = within(row["margin"])
    if pd.isna(row.get("difference")):
        return "undecided: needs 2+ held-out seeds"
    interval = (f"{pp(row['difference'])} (95% CI {pp(row['diff_ci_low'])} to "
                f"{pp(row['diff_ci_high'])}, repeated over the race's looks, before Holm)")
    if row["decision"] == decisions.EQUIVALENT:
        return f"equivalent within {margin}: {interval}"
    if row["decision"] == decisions.UNDECIDED:
        return f"undecided at {margin}: {interval}; {more_seeds(row['more_seeds'])} would decide"
    return f"{row['decision']}: {interval}"


def more_seeds(count: float) -> str:
    return f"about {counted(count, 'more seed', spec='.0f')}"


def headline(ranked: pd.DataFrame, selected_from: int) -> list[str]:
    """The best config, each other config's decision against it, and the one to use."""
    best = ranked[ranked["is_best"]].iloc[0]
    margin = ranked["margin"].iloc[0]
    lines = []
    if best["heldout_seeds"] >= MIN_SEEDS:
        lines.append(f"Best config (picked by {best['best_by']} from {selected_from} searched "
                     f"configs, then measured on held-out seeds): {describe(best)}: "
                     f"{measured(best)}, {mflop(best['flops_per_image'])} per image "
                     f"({INTERVAL_METHOD}).")
    else:
        lines.append(f"Best config by the search's own value (from {selected_from} searched "
                     f"configs, single seed, not held out): {describe(best)}: {measured(best)}. "
                     "Nothing is decided on the seeds that selected a config: run `mnist-bench "
                     "confirm` to measure the top configs on held-out seeds.")
        lines.append(f"The one to use: {describe(best)}, the search's pick, until confirm "
                     "decides (no config is shown equivalent to it yet).")
        return lines
    if best.get("overtaken"):
        lines.append(f"The search's pick was decided worse than this config on held-out seeds, "
                     f"so this config is the best and every decision below is against it "
                     f"({best['best_by']}).")
    counts = ranked[~ranked["is_best"]]["decision"].value_counts()
    summary = ", ".join(f"{counts[name]} {name}" for name in
                        (decisions.BETTER, decisions.EQUIVALENT, decisions.WORSE,
                         decisions.UNDECIDED) if counts.get(name))
    if summary:
        lines.append(f"Against it, within a margin of {within(margin)} ({decisions.METHOD}): "
                     f"{summary}.")
    for _, row in ranked[~ranked["is_best"]].iterrows():
        lines.append(f"{describe(row)}: {measured(row)}; {versus_best(row)}.")
    lines += noise_lines(ranked)
    use = ranked[ranked["recommended"]].iloc[0]
    if use["config_key"] == best["config_key"]:
        lines.append(f"The one to use: {describe(best)}, the best (no cheaper config is shown "
                     f"equivalent to it within {within(margin)}).")
    else:
        lines.append(f"The one to use: {describe(use)}: {measured(use)}, {use['decision']} "
                     f"to the best within {within(margin)}, at {mflop(use['flops_per_image'])} "
                     f"per image against {mflop(best['flops_per_image'])} "
                     f"({ratio(use['flops_per_image'], best['flops_per_image'], 'FLOPs')} for "
                     "the best).")
    return lines


def noise_lines(ranked: pd.DataFrame) -> list[str]:
    """The pooled seed sd, its check and the margin rule's value; and, where the race's seed
    limit cannot show an equal config equivalent, the seeds it would take."""
    if "seed_sd" not in ranked or pd.isna(ranked["seed_df"].iloc[0]):
        return []
    first = ranked.iloc[0]
    noise = decisions.Noise(float(first["seed_sd"]), int(first["seed_df"]),
                            int(first["seed_groups"]), float(first["homogeneity_p"]))
    margin = first["margin"]
    lines = [noise.sentence(margin)]
    needed, seed_limit = int(first["equivalence_seeds"]), int(first["max_seeds"])
    if noise.pooled and needed > seed_limit:
        lines.append(f"At {within(margin)} no config can be shown equivalent within "
                     f"the race's {seed_limit} seeds a config: a config equal to the best would "
                     f"take about {needed} (`confirm --max-seeds {needed}`, or a wider `--margin`).")
    return lines


def knob_answer(knob: str, pairs: pd.DataFrame) -> list[str]:
    """The knob's verdict on the tutorial's claim, then one line per paired comparison."""
    name, claim = KNOB_NAMES[knob], CLAIMS[knob]
    if pairs.empty:
        return [f"{capitalized(name)}: no two measured configs differ only in {name} with "
                f"{MIN_SEEDS}+ held-out seeds in common, so the tutorial's claim \"{claim.text}\" "
                "is untested: run `mnist-bench confirm` (it sweeps each knob around the best "
                "config), or rerun it to continue its race."]
    verdict = claim_verdict(pairs["decision"].tolist(), claim.direction)
    lines = [f"{capitalized(name)}: the tutorial's claim \"{claim.text}\" is {verdict} "
             f"({decision_counts(pairs)}; {PAIRED_METHOD})."]
    lines += [pair_sentence(row) for _, row in pairs.iterrows()]
    return lines


def one_epoch_overfitting(fc_pairs: pd.DataFrame) -> list[str]:
    """The over-fitting claim at a budget under two epochs where FC pairs were measured: not
    judged, for in one epoch every batch is unseen, so the training loss is no measure of
    fitting the training set (from two epochs bench.evidence.overfitting judges it)."""
    if fc_pairs.empty:
        return []
    return [f"FC width and over-fitting: the tutorial's claim \"{OVERFIT_CLAIM}\" cannot be "
            "judged at one epoch (every training batch is new, so there is no gap between "
            "seen and unseen data to measure); confirm at two or more epochs to judge it."]


def claim_verdict(decided: list[str], direction: int) -> str:
    """Supported when every pair decided different goes the claimed way, contradicted when every
    one goes the other way, mixed when both occur; with none different, contradicted by no
    practical difference when some pair is shown equivalent, else undecided."""
    agree_with = decisions.BETTER if direction > 0 else decisions.WORSE
    against = decisions.WORSE if direction > 0 else decisions.BETTER
    agree, disagree = decided.count(agree_with), decided.count(against)
    if agree and disagree:
        return MIXED
    if agree:
        return SUPPORTED
    if disagree:
        return CONTRADICTED
    if decided.count(decisions.EQUIVALENT):
        return NO_EFFECT
    return UNDECIDED


def decision_counts(pairs: pd.DataFrame) -> str:
    total = len(pairs)
    counts = pairs["decision"].value_counts()
    named = {decisions.BETTER: "larger value more accurate",
             decisions.WORSE: "larger value less accurate",
             decisions.EQUIVALENT: f"equivalent within {within(pairs['margin'].iloc[0])}",
             decisions.UNDECIDED: "undecided"}
    return (f"{counted(total, 'paired comparison')}: "
            + ", ".join(f"{int(counts.get(name, 0))} {text}" for name, text in named.items()))


def pair_sentence(row: pd.Series) -> str:
    """One paired comparison, its interval and the exact cost of both configs."""
    knob = row["knob"]
    fixed = describe({**row["fixed"], knob: row["low_value"],
                      "training_label": row.get("training_label", "")}, skip=knob)
    if row["decision"] == decisions.BETTER:
        outcome = f"{knob_label(knob, row['high_value'])} is more accurate"
    elif row["decision"] == decisions.WORSE:
        outcome = f"{knob_label(knob, row['high_value'])} is less accurate"
    elif row["decision"] == decisions.EQUIVALENT:
        outcome = f"equivalent within {within(row['margin'])}"
    else:
        outcome = f"undecided ({more_seeds(row['more_seeds'])} would decide)"
    return (f"{knob_label(knob, row['low_value'])} -> {row['high_value']} ({fixed}): "
            f"{pct(row['low_mean'])} -> {pct(row['high_mean'])}, difference {pp(row['difference'])} "
            f"({row['confidence']:.0%} CI {pp(row['ci_low'])} to {pp(row['ci_high'])} before "
            f"Holm, n={row['pairs']} paired held-out seeds): {outcome}; "
            f"{mflop(row['low_flops_per_image'])} -> {mflop(row['high_flops_per_image'])} per image "
            f"({ratio(row['low_flops_per_image'], row['high_flops_per_image'], 'FLOPs')}), "
            f"{row['low_parameters']:,.0f} -> {row['high_parameters']:,.0f} parameters "
            f"({ratio(row['low_parameters'], row['high_parameters'], 'parameters')}).")


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def knob_label(knob: str, value) -> str:
    return f"{KNOB_NAMES[knob]} {value}"
