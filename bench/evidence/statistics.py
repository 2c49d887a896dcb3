"""Statistics over seeds, from scipy: per-config intervals, decisions against the best, paired
effects. Only held-out seeds (not a search's own, which selected the config) enter a mean, an
interval or a decision; the search's value is kept beside them as `selection_value`.

Methods (named in the report next to the numbers they produce):
- a config's interval: Student's t interval of the held-out mean (95%), its sd at least one
  validation image;
- against the best, and a knob's effect (configs that differ only in that knob, paired by
  held-out seed): bench.evidence.decisions (better / equivalent within +-margin / worse /
  undecided; seed sd pooled over the fidelity, sequential over the race's looks, Holm over the
  family).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bench.evidence import decisions
from bench.evidence.decisions import MIN_SEEDS
from bench.store.identity import KNOBS, TRAINING_KNOBS, TRAINING_NAMES

CONFIDENCE = 0.95
SIZE_COLUMNS = ["parameters", "flops_per_image", "latency_ms_batch1", "train_images_per_second"]
INTERVAL_METHOD = ("Student's t interval over held-out seeds, 95%, sd at least one validation "
                   "image")
PAIRED_METHOD = "paired by held-out seed; " + decisions.METHOD


def config_statistics(measurements: pd.DataFrame) -> pd.DataFrame:
    """One row per (fidelity, config): the search's value (`selection_value`, the mean of the
    seeds a search reported), the held-out seeds' count, mean, sd and t interval, the trials
    that asked for it, and its size and speed (median over its measurements).

    `mean` and `seeds` are the held-out ones where there are any; a config measured only by a
    search shows its selection value there, with `heldout_seeds` 0.
    """
    rows = []
    for (fidelity, config), group in measurements.groupby(["fidelity_key", "config_key"],
                                                          sort=False):
        selected = group[group["selection"]]["validation_accuracy"].to_numpy(float)
        heldout = group[~group["selection"]]["validation_accuracy"].to_numpy(float)
        values = heldout if len(heldout) else selected
        resolution = float(group["resolution"].iloc[0])
        low, high = np.clip(mean_interval(heldout, resolution), 0.0, 1.0)  # an accuracy's range
        first = group.iloc[0]
        rows.append({
            "fidelity_key": fidelity, "config_key": config,
            **{knob: first[knob] for knob in KNOBS},
            "training": first["config"].get("training", {}),
            "selection_value": selected.mean() if len(selected) else np.nan,
            "heldout_seeds": len(heldout),
            "seeds": len(values), "mean": values.mean(),
            "sd": values.std(ddof=1) if len(values) > 1 else np.nan,
            "ci_low": low, "ci_high": high, "resolution": resolution,
            "queries": int(group["queries"].sum()),
            "studies": ", ".join(sorted(set(group["study"]))),
            "loss_gap": group["loss_gap"].mean(),
            "training_flops": _training_flops(group),
            **{column: pd.to_numeric(group[column], errors="coerce").median()
               for column in SIZE_COLUMNS},
        })
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["training_label"] = training_labels(frame)
    return frame


def training_labels(per_config: pd.DataFrame) -> list[str]:
    """Each config's training settings, named only where they differ between the configs of its
    fidelity ("" where all were trained alike, as in the faq space)."""
    varying = {fidelity: [k for k in TRAINING_KNOBS if len({repr(t.get(k)) for t in group}) > 1]
               for fidelity, group in per_config.groupby("fidelity_key", sort=False)["training"]}
    return [", ".join(f"{TRAINING_NAMES[k]} {_setting(training.get(k))}" for k in varying[fidelity])
            for fidelity, training in zip(per_config["fidelity_key"], per_config["training"])]


def _setting(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _training_flops(group: pd.DataFrame) -> float:
    """Training cost of one run: forward FLOPs x 3 (forward and backward) x images x epochs."""
    row = group.iloc[0]
    try:
        return 3.0 * float(row["flops_per_image"]) * float(row["train_images"]) * float(row["epochs"])
    except (TypeError, ValueError):
        return np.nan


def mean_interval(values: np.ndarray, resolution: float,
                  confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval of the mean, its sd at least `resolution`; NaN for under two values."""
    values = np.asarray(values, float)
    if len(values) < MIN_SEEDS:
        return np.nan, np.nan
    sd = decisions.floored_sd(values, resolution)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * sd / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def rank_against_best(per_config: pd.DataFrame, heldout: dict[str, np.ndarray],
                      margin: float, looks: decisions.Looks = decisions.Looks()) -> pd.DataFrame:
    """The per-config statistics of one fidelity with the best, every other config's decision
    against it, and the one to use.

    The best is the search's pick among the configs with held-out seeds (the highest
    `selection_value`), so its held-out mean is not inflated by having been picked; where no
    search value is known, the highest held-out mean (`best_by` says which). Each other config
    is compared with it on held-out seeds (difference, repeated interval, decision; seed sd
    pooled over the fidelity's configs; sequential p over the race's `looks`, Holm over the
    configs). A config decided better than the best becomes the best (the one decided better
    with the highest held-out mean), and every config is decided again against it. The one to
    use is the cheapest in FLOPs of the best and the configs decided equivalent to it or better.
    """
    frame = per_config.copy()
    tested = frame[frame["heldout_seeds"] >= MIN_SEEDS]
    known = tested.dropna(subset=["selection_value"])
    if len(known):
        pool, key, by = known, "selection_value", "the search's value"
    elif len(tested):
        pool, key, by = tested, "mean", "held-out mean (no search value known)"
    else:
        pool, key, by = frame, "mean", "the search's value; nothing held out yet"
    best = pool.sort_values([key, "flops_per_image"], ascending=[False, True],
                            kind="stable").iloc[0]["config_key"]
    resolution = float(frame["resolution"].iloc[0])
    noise = decisions.seed_noise([heldout.get(c, []) for c in frame["config_key"]], resolution)
    overtaken: list[str] = []
    while True:
        decided = _against(frame, best, heldout, margin, noise, looks)
        better = decided[decided["decision"] == decisions.BETTER]
        if better.empty or len(overtaken) >= len(frame):
            break
        overtaken.append(best)
        best = better.sort_values("mean", ascending=False, kind="stable").iloc[0]["config_key"]
    frame = decided
    frame["best_by"] = by if not overtaken else (
        f"decided better on held-out seeds than {len(overtaken)} earlier best "
        f"config{'s' if len(overtaken) > 1 else ''}, the first of them {by}'s pick")
    frame["overtaken"] = ", ".join(overtaken)
    frame["margin"] = margin
    frame["seed_sd"], frame["seed_df"] = noise.sd, noise.df
    frame["seed_groups"], frame["homogeneity_p"] = noise.groups, noise.homogeneity_p
    frame["seed_pooled"] = noise.pooled
    frame["equivalence_seeds"] = decisions.equivalence_seeds(noise, margin, len(frame) - 1, looks)
    frame["max_seeds"] = looks.last
    candidates = frame[frame["decision"].isin([decisions.BEST, decisions.EQUIVALENT,
                                               decisions.BETTER])]
    recommended = candidates.sort_values(["flops_per_image", "mean"], ascending=[True, False],
                                         kind="stable").iloc[0]
    frame["recommended"] = frame["config_key"] == recommended["config_key"]
    return frame


def _against(per_config: pd.DataFrame, best: str, heldout: dict[str, np.ndarray], margin: float,
             noise: decisions.Noise, looks: decisions.Looks) -> pd.DataFrame:
    """Every config of `per_config` decided against `best`, as one Holm family."""
    frame = per_config.copy()
    frame["is_best"] = frame["config_key"] == best
    others = frame.index[~frame["is_best"]]
    resolution = float(frame["resolution"].iloc[0])
    comparisons = [decisions.unpaired(heldout.get(frame.loc[i, "config_key"], []),
                                      heldout.get(best, []), margin, resolution, noise, looks)
                   for i in others]
    decided = decisions.decide_family(comparisons, margin, looks)
    values: dict[str, dict] = {name: {} for name in ("difference", "diff_ci_low", "diff_ci_high",
                                                     "p_different", "p_equivalent", "more_seeds")}
    decision = {i: decisions.BEST for i in frame.index[frame["is_best"]]}
    for index, comparison, outcome in zip(others, comparisons, decided):
        decision[index] = outcome["decision"]
        for name in ("p_different", "p_equivalent", "more_seeds"):
            values[name][index] = outcome[name]
        if comparison is not None:
            values["difference"][index] = comparison.difference
            values["diff_ci_low"][index] = comparison.ci_low
            values["diff_ci_high"][index] = comparison.ci_high
    frame["decision"] = pd.Series(decision)
    for name, column in values.items():
        frame[name] = pd.Series(column, index=frame.index, dtype=float)
    return frame


def paired_difference(high: np.ndarray, low: np.ndarray) -> tuple[float, float, float]:
    """Mean of high - low over paired seeds and its paired t interval (95%): the loss gap's.

    Only seeds measured in both count (a gap is NaN where a curve predates its measurement);
    under two of them, all three are NaN: nothing to judge.
    """
    high, low = np.asarray(high, float), np.asarray(low, float)
    measured = ~(np.isnan(high) | np.isnan(low))
    high, low = high[measured], low[measured]
    if len(high) < MIN_SEEDS:
        return np.nan, np.nan, np.nan
    differences = high - low
    mean = float(differences.mean())
    if np.ptp(differences) == 0:
        return mean, mean, mean
    interval = stats.ttest_rel(high, low).confidence_interval(confidence_level=CONFIDENCE)
    return mean, float(interval.low), float(interval.high)


def knob_pairs(measurements: pd.DataFrame, per_config: pd.DataFrame, knob: str) -> pd.DataFrame:
    """Every pair of configs (one fidelity) that differ only in `knob`, at neighbouring values
    of it, with 2+ held-out seeds in common: the paired difference (larger value - smaller) in
    validation accuracy and in the loss gap. `decide_pairs` decides them as one family."""
    found = []
    heldout_rows = measurements[~measurements["selection"]]
    for fidelity, group in heldout_rows.groupby("fidelity_key", sort=False):
        configs = group.drop_duplicates("config_key")
        others = configs["config"].map(lambda c: _without(c, knob))
        for _, same in configs.assign(others=others).groupby("others", sort=False):
            ordered = same.sort_values(knob)
            ids = ordered["config_key"].tolist()
            for low_id, high_id in zip(ids, ids[1:]):
                low = group[group["config_key"] == low_id].set_index("seed")
                high = group[group["config_key"] == high_id].set_index("seed")
                seeds = sorted(set(low.index) & set(high.index))
                if len(seeds) >= MIN_SEEDS:
                    found.append((fidelity, low_id, high_id, low.loc[seeds], high.loc[seeds]))
    rows = []
    by_config = per_config.set_index(["fidelity_key", "config_key"])
    for fidelity, low_id, high_id, low, high in found:
        differences = (high["validation_accuracy"].to_numpy(float)
                       - low["validation_accuracy"].to_numpy(float))
        gap, gap_low, gap_high = paired_difference(high["loss_gap"], low["loss_gap"])
        low_row, high_row = by_config.loc[(fidelity, low_id)], by_config.loc[(fidelity, high_id)]
        rows.append({
            "knob": knob, "fidelity_key": fidelity, "low_config": low_id, "high_config": high_id,
            "low_value": low_row[knob], "high_value": high_row[knob],
            "fixed": {k: low.iloc[0]["config"].get(k) for k in KNOBS if k != knob},
            "training_label": low_row.get("training_label", ""),
            "pairs": len(low), "confidence": CONFIDENCE,
            "budget_epochs": low.iloc[0]["epochs"],
            "low_mean": float(low["validation_accuracy"].mean()),
            "high_mean": float(high["validation_accuracy"].mean()),
            "differences": differences, "resolution": float(low["resolution"].iloc[0]),
            "gap_difference": gap, "gap_ci_low": gap_low, "gap_ci_high": gap_high,
            "gap_images": low["gap_images"].max(),  # NaN where no curve scored a training subset
            **{f"low_{c}": low_row[c] for c in ("flops_per_image", "parameters")},
            **{f"high_{c}": high_row[c] for c in ("flops_per_image", "parameters")},
        })
    return pd.DataFrame(rows)


def decide_pairs(pairs: pd.DataFrame, margin: float,
                 looks: decisions.Looks = decisions.Looks()) -> pd.DataFrame:
    """Every FAQ pair decided as one family (Holm over all knobs, sequential p over the race's
    `looks`, the paired differences' sd pooled over the pairs of each fidelity): `decision`
    better (the larger value more accurate), worse, equivalent or undecided, `effect` +1, -1
    or 0, and the difference with its repeated interval."""
    if pairs.empty:
        return pairs
    noise = {fidelity: decisions.seed_noise(list(group["differences"]),
                                            float(group["resolution"].iloc[0]))
             for fidelity, group in pairs.groupby("fidelity_key", sort=False)}
    comparisons = [decisions.paired(row["differences"], margin, row["resolution"],
                                    noise[row["fidelity_key"]], looks)
                   for _, row in pairs.iterrows()]
    decided = pd.DataFrame(decisions.decide_family(comparisons, margin, looks), index=pairs.index)
    frame = pairs.drop(columns=["differences"]).join(decided)
    frame["difference"] = [c.difference for c in comparisons]
    frame["ci_low"] = [c.ci_low for c in comparisons]
    frame["ci_high"] = [c.ci_high for c in comparisons]
    frame["effect"] = frame["decision"].map({decisions.BETTER: 1, decisions.WORSE: -1})
    frame["effect"] = frame["effect"].fillna(0).astype(int)
    frame["margin"] = margin
    return frame


def _without(config: dict, knob: str) -> str:
    return repr(sorted((k, v if not isinstance(v, list) else tuple(v))
                       for k, v in config.items() if k != knob))

