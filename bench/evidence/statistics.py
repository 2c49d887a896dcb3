"""Statistics over seeds, from scipy: per-config intervals, ties with the best, paired effects.

Methods (named in the report next to the numbers they produce):
- a config's interval: Student's t interval of the mean over its seeds (95%);
- tied with the best: Welch's unequal-variance t-test of the two configs' seeds, two-sided,
  p >= 0.05 (configs measured with one seed cannot be tested and are listed apart);
- a knob's effect: configs that differ only in that knob, paired by seed; the mean difference
  with Student's paired t interval. The intervals of one knob are Bonferroni-adjusted for the
  number of pairs of that knob, so a knob with no effect is called an effect at most 5% of the time.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bench.store.identity import KNOBS, TRAINING_KNOBS, TRAINING_NAMES

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
MIN_SEEDS = 2  # for an interval, a test or a pair
SIZE_COLUMNS = ["parameters", "flops_per_image", "latency_ms_batch1", "train_images_per_second"]
INTERVAL_METHOD = "Student's t interval over seeds, 95%"
TIE_METHOD = "Welch's t-test against the best, two-sided, p >= 0.05"
PAIRED_METHOD = ("paired by seed, Student's paired t interval, 95% Bonferroni-adjusted over the "
                 "pairs of each knob")


def config_summary(measurements: pd.DataFrame) -> pd.DataFrame:
    """One row per (fidelity, config): seeds, mean, sd and t interval of validation accuracy,
    trials that asked for it, and its size and speed (median over its measurements)."""
    rows = []
    for (fidelity, config), group in measurements.groupby(["fidelity_id", "config_id"], sort=False):
        values = group["validation_accuracy"].to_numpy(float)
        low, high = mean_interval(values)
        first = group.iloc[0]
        rows.append({
            "fidelity_id": fidelity, "config_id": config,
            **{knob: first[knob] for knob in KNOBS},
            "training": first["config"].get("training", {}),
            "seeds": len(values), "mean": values.mean(),
            "sd": values.std(ddof=1) if len(values) > 1 else np.nan,
            "ci_low": low, "ci_high": high,
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


def training_labels(summary: pd.DataFrame) -> list[str]:
    """Each config's training settings, named only where they differ between the configs of its
    fidelity ("" where all were trained alike, as in the faq space)."""
    varying = {fidelity: [k for k in TRAINING_KNOBS if len({repr(t.get(k)) for t in group}) > 1]
               for fidelity, group in summary.groupby("fidelity_id", sort=False)["training"]}
    return [", ".join(f"{TRAINING_NAMES[k]} {_setting(training.get(k))}" for k in varying[fidelity])
            for fidelity, training in zip(summary["fidelity_id"], summary["training"])]


def _setting(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _training_flops(group: pd.DataFrame) -> float:
    """Training cost of one run: forward FLOPs x 3 (forward and backward) x images x epochs."""
    row = group.iloc[0]
    try:
        return 3.0 * float(row["flops_per_image"]) * float(row["train_images"]) * float(row["epochs"])
    except (TypeError, ValueError):
        return np.nan


def mean_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval of the mean; NaN for fewer than two values."""
    values = np.asarray(values, float)
    if len(values) < MIN_SEEDS:
        return np.nan, np.nan
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    result = stats.ttest_1samp(values, 0.0)
    interval = result.confidence_interval(confidence_level=confidence)
    return float(interval.low), float(interval.high)


def best_and_ties(summary: pd.DataFrame, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """The summary of one fidelity with `rank_basis`, `tied_with_best`, `p_vs_best` and
    `recommended` columns.

    The best is the highest mean among configs with 2+ seeds (the highest single value when no
    config has two). Tied: Welch's test cannot tell it from the best. Recommended: the cheapest
    in FLOPs of the best and its ties (the most accurate of equally cheap ones).
    """
    frame = summary.copy()
    repeated = frame[frame["seeds"] >= MIN_SEEDS]
    pool = repeated if len(repeated) else frame
    best = pool.sort_values(["mean", "flops_per_image"], ascending=[False, True],
                            kind="stable").iloc[0]
    frame["is_best"] = frame["config_id"] == best["config_id"]
    p_values = []
    for _, row in frame.iterrows():
        if row["is_best"]:
            p_values.append(1.0)
        elif row["seeds"] < MIN_SEEDS or best["seeds"] < MIN_SEEDS:
            p_values.append(np.nan)
        else:
            p_values.append(welch_p(values[row["config_id"]], values[best["config_id"]]))
    frame["p_vs_best"] = p_values
    frame["tied_with_best"] = frame["is_best"] | (frame["p_vs_best"] >= ALPHA)
    candidates = frame[frame["tied_with_best"]]
    recommended = candidates.sort_values(["flops_per_image", "mean"], ascending=[True, False],
                                         kind="stable").iloc[0]
    frame["recommended"] = frame["config_id"] == recommended["config_id"]
    return frame


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of Welch's t-test; 1.0 for two constant samples with equal means."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def paired_difference(high: np.ndarray, low: np.ndarray,
                      confidence: float) -> tuple[float, float, float]:
    """Mean of high - low over paired seeds and its paired t interval."""
    differences = np.asarray(high, float) - np.asarray(low, float)
    mean = float(differences.mean())
    if np.ptp(differences) == 0:
        return mean, mean, mean
    interval = stats.ttest_rel(high, low).confidence_interval(confidence_level=confidence)
    return mean, float(interval.low), float(interval.high)


def knob_pairs(measurements: pd.DataFrame, summary: pd.DataFrame, knob: str) -> pd.DataFrame:
    """Every pair of configs (one fidelity) that differ only in `knob`, at neighbouring values
    of it, with 2+ seeds in common: the paired difference (larger value - smaller) in validation
    accuracy and in the loss gap, with Bonferroni-adjusted intervals over the knob's pairs."""
    found = []
    for fidelity, group in measurements.groupby("fidelity_id", sort=False):
        configs = group.drop_duplicates("config_id")
        others = configs["config"].map(lambda c: _without(c, knob))
        for _, same in configs.assign(others=others).groupby("others", sort=False):
            ordered = same.sort_values(knob)
            ids = ordered["config_id"].tolist()
            for low_id, high_id in zip(ids, ids[1:]):
                low = group[group["config_id"] == low_id].set_index("seed")
                high = group[group["config_id"] == high_id].set_index("seed")
                seeds = sorted(set(low.index) & set(high.index))
                if len(seeds) >= MIN_SEEDS:
                    found.append((fidelity, low_id, high_id, low.loc[seeds], high.loc[seeds]))
    confidence = 1 - ALPHA / max(len(found), 1)
    rows = []
    by_config = summary.set_index(["fidelity_id", "config_id"])
    for fidelity, low_id, high_id, low, high in found:
        mean, ci_low, ci_high = paired_difference(high["validation_accuracy"],
                                                  low["validation_accuracy"], confidence)
        gap, gap_low, gap_high = paired_difference(high["loss_gap"], low["loss_gap"], confidence)
        low_row, high_row = by_config.loc[(fidelity, low_id)], by_config.loc[(fidelity, high_id)]
        rows.append({
            "knob": knob, "fidelity_id": fidelity, "low_config": low_id, "high_config": high_id,
            "low_value": low_row[knob], "high_value": high_row[knob],
            "fixed": {k: low.iloc[0]["config"].get(k) for k in KNOBS if k != knob},
            "training_label": low_row.get("training_label", ""),
            "pairs": len(low), "confidence": confidence,
            "low_mean": float(low["validation_accuracy"].mean()),
            "high_mean": float(high["validation_accuracy"].mean()),
            "difference": mean, "ci_low": ci_low, "ci_high": ci_high,
            "effect": _sign(ci_low, ci_high),
            "gap_difference": gap, "gap_ci_low": gap_low, "gap_ci_high": gap_high,
            "gap_effect": _sign(gap_low, gap_high),
            **{f"low_{c}": low_row[c] for c in ("flops_per_image", "parameters")},
            **{f"high_{c}": high_row[c] for c in ("flops_per_image", "parameters")},
        })
    return pd.DataFrame(rows)


def _without(config: dict, knob: str) -> str:
    return repr(sorted((k, v if not isinstance(v, list) else tuple(v))
                       for k, v in config.items() if k != knob))


def _sign(low: float, high: float) -> int:
    """+1 when the interval is above zero, -1 below, 0 when it holds zero."""
    if low > 0:
        return 1
    if high < 0:
        return -1
    return 0
