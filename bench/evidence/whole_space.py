"""The FAQ answered over the whole faq space from the reference table, beside the local answers of
`confirm`: for each knob, every matched pair of measured configs (identical except that knob, at
neighbouring values of it), the mean paired difference with a bootstrap interval and the pairs won,
the same split by each other knob (where the answer depends on it), and Optuna's knob importance;
bench.evidence.whole_space_sentences says them.

A config's value is its mean over its seeds of the best full-validation accuracy (interim scores
do not count), so any number of seeds per config and any coverage of the space can be answered.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.importance import PedAnovaImportanceEvaluator

from bench.store.curves import curve_value
from bench.store.identity import KNOBS, config_id, fidelity_id, normalized_config

CONFIDENCE = 0.95
RESAMPLES = 9999
BOOTSTRAP_SEED = 0
MIN_STRATUM_PAIRS = 3  # a percentile bootstrap of 1-2 pairs is their range: no interval to part
POOLING = "pooling"  # the pooling kind: no pooling, subsampling or pooling (pooling_kind)
TARGET_QUANTILE, MIN_TOP_CONFIGS = 0.1, 5
METHOD = (f"matched pairs: configs identical except one knob, at neighbouring values of it among "
          f"those measured; the mean paired difference (larger value minus smaller) with a "
          f"{CONFIDENCE:.0%} percentile bootstrap interval over pairs ({RESAMPLES:,} resamples, "
          f"numpy, seed {BOOTSTRAP_SEED}); a config's value is the mean over its seeds of its best "
          "full-validation accuracy")
INTERACTION_METHOD = ("the knob an answer depends on most: the other knob (or pooling, with or "
                      "without) whose values split the pairs into strata whose mean differences "
                      f"spread most (highest minus lowest, strata of {MIN_STRATUM_PAIRS}+ pairs); "
                      "it depends on it where the two extreme strata's intervals do not overlap")
IMPORTANCE_METHOD = (f"Optuna's PED-ANOVA, PedAnovaImportanceEvaluator, normalized to sum to 1: "
                     f"what it takes to reach the top {TARGET_QUANTILE:.0%} of configs, at least "
                     f"{MIN_TOP_CONFIGS} of them, on an in-memory study of the config means; "
                     "fANOVA needs scikit-learn, which is not installed")
SUMMARY = ("pairs", "mean", "ci_low", "ci_high", "wins", "losses", "ties")


@dataclass(frozen=True)
class WholeSpace:
    """Every answer over the table, from one per-config frame, so sentences and plots agree."""

    configs: pd.DataFrame  # one row per config: knobs, seeds, mean, sd, flops_per_image
    pairs: pd.DataFrame  # every matched pair of every knob
    steps: pd.DataFrame  # a summary per (knob, low value, high value)
    strata: pd.DataFrame  # the same per other knob (`by`) and its value (`by_value`)
    spreads: pd.DataFrame  # per (knob, step, by): the spread of its strata means
    importance: dict[str, float]  # normalized PED-ANOVA importance per knob ({} when too few)
    space: str
    epochs: float
    note: str  # what was left out (other fidelities), or ""


# ---------------------------------------------------------------- rows -> one value per config

def pooling_kind(pool_size: int, pool_stride: int) -> str:
    """'no pooling' (window 1, stride 1), 'subsampling' (window 1, stride > 1) or 'pooling'."""
    if pool_size > 1:
        return "pooling"
    return "no pooling" if pool_stride == 1 else "subsampling"


def one_fidelity(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The complete rows of the fidelity with the most configs, and a note naming what was left
    out: configs trained differently never answer each other."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("complete"):
            groups.setdefault(fidelity_id(row["fidelity"]), []).append(row)
    if not groups:
        raise ValueError(f"no complete rows among {len(rows)}: nothing to answer")
    counts = {key: len({config_id(row["config"]) for row in group})
              for key, group in groups.items()}
    chosen = max(counts, key=counts.get)
    if len(groups) == 1:
        return groups[chosen], ""
    left = sum(len(group) for key, group in groups.items() if key != chosen)
    return groups[chosen], (f"the table holds {len(groups)} fidelities; answered for the one with "
                            f"the most configs ({counts[chosen]}), leaving out {left} rows of "
                            "the others")


def config_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per config of one fidelity: its knobs, its pooling kind, the rest of it (`rest`), its
    seeds, mean and sd of the best full-validation accuracy, and its size."""
    if len({fidelity_id(row["fidelity"]) for row in rows}) > 1:
        raise ValueError("rows of several fidelities: pick one with one_fidelity(rows) first")
    by_config: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_config.setdefault(config_id(row["config"]), []).append(row)
    frame = []
    for key, group in by_config.items():
        config = normalized_config(group[0]["config"])
        values = np.array([curve_value(row["curve"]) for row in group])
        measurements = group[0].get("measurements") or {}
        frame.append({
            "config_id": key, **{knob: config[knob] for knob in KNOBS},
            POOLING: pooling_kind(config["pool_size"], config["pool_stride"]),
            "rest": json.dumps({k: v for k, v in config.items() if k not in KNOBS}, sort_keys=True),
            "seeds": len(values), "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
            "flops_per_image": measurements.get("flops_per_image", np.nan),
            "parameters": measurements.get("parameters", np.nan),
            "epochs": float(group[0]["fidelity"]["train_settings"]["epochs"]),
        })
    return pd.DataFrame(frame)


# ---------------------------------------------------------------- matched pairs and summaries

def matched_pairs(configs: pd.DataFrame, knob: str) -> pd.DataFrame:
    """Every pair of configs identical except `knob`, at neighbouring values of it among those
    in the table: the difference larger value minus smaller, and the values held fixed."""
    levels = sorted(configs[knob].unique())
    fixed = [k for k in KNOBS if k != knob]
    columns = ["knob", "low_value", "high_value", "low_config", "high_config", "low_mean",
               "high_mean", "difference", *fixed, POOLING]
    low = configs.assign(following=configs[knob].map(dict(zip(levels, levels[1:]))))
    low = low[low["following"].notna()].astype({"following": configs[knob].dtype})
    matched = low.merge(configs, left_on=[*fixed, "rest", "following"],
                        right_on=[*fixed, "rest", knob], suffixes=("_low", "_high"))
    pairs = pd.DataFrame({
        "knob": knob, "low_value": matched[f"{knob}_low"], "high_value": matched[f"{knob}_high"],
        "low_config": matched["config_id_low"], "high_config": matched["config_id_high"],
        "low_mean": matched["mean_low"], "high_mean": matched["mean_high"],
        "difference": matched["mean_high"] - matched["mean_low"],
        **{k: matched[k] for k in fixed}, POOLING: matched[f"{POOLING}_low"]}, columns=columns)
    return pairs.sort_values(["low_value", *fixed], kind="stable", ignore_index=True)


def summarize(differences: np.ndarray) -> dict[str, float]:
    """Count, mean, percentile bootstrap interval over pairs (NaN under two), wins, losses, ties."""
    differences = np.asarray(differences, float)
    low = high = np.nan
    if len(differences) >= 2:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        means = differences[rng.integers(0, len(differences),
                                         (RESAMPLES, len(differences)))].mean(axis=1)
        tail = (1 - CONFIDENCE) / 2 * 100
        low, high = (float(v) for v in np.percentile(means, [tail, 100 - tail]))
    return {"pairs": len(differences),
            "mean": float(differences.mean()) if len(differences) else np.nan,
            "ci_low": low, "ci_high": high,
            "wins": int((differences > 0).sum()), "losses": int((differences < 0).sum()),
            "ties": int((differences == 0).sum())}


def stratifiers(knob: str) -> list[str]:
    """What may change a knob's answer: every other knob, and the pooling kind for knobs that
    are not pooling knobs."""
    return [k for k in KNOBS if k != knob] + ([] if knob.startswith("pool_") else [POOLING])


def step_summaries(pairs: pd.DataFrame) -> pd.DataFrame:
    """A summary per (knob, low value, high value), knobs in the FAQ's order."""
    rows = [{"knob": knob, "low_value": low, "high_value": high, **summarize(group["difference"])}
            for (knob, low, high), group in pairs.groupby(["knob", "low_value", "high_value"],
                                                          sort=False)]
    frame = pd.DataFrame(rows, columns=["knob", "low_value", "high_value", *SUMMARY])
    order = frame["knob"].map({knob: i for i, knob in enumerate(KNOBS)})
    return frame.assign(order=order).sort_values(["order", "low_value"], kind="stable",
                                                 ignore_index=True).drop(columns="order")


def strata_summaries(pairs: pd.DataFrame) -> pd.DataFrame:
    """The step summaries split by each other knob's value (`by`, `by_value`)."""
    rows = []
    for (knob, low, high), group in pairs.groupby(["knob", "low_value", "high_value"], sort=False):
        for by in stratifiers(knob):
            for value, differences in group.groupby(by, sort=True)["difference"]:
                rows.append({"knob": knob, "low_value": low, "high_value": high, "by": by,
                             "by_value": _plain(value), **summarize(differences)})
    return pd.DataFrame(rows, columns=["knob", "low_value", "high_value", "by", "by_value",
                                       *SUMMARY])


def strata_spreads(strata: pd.DataFrame) -> pd.DataFrame:
    """Per (knob, step, by): the spread of the strata means (of 2+ pairs), the strata with the
    highest and lowest mean, whether their intervals part (`depends`), and `chosen` for the
    `by` of largest spread in its step."""
    rows = []
    kept = strata[strata["pairs"] >= MIN_STRATUM_PAIRS]
    for (knob, low, high, by), group in kept.groupby(["knob", "low_value", "high_value", "by"],
                                                     sort=False):
        if len(group) < 2:
            continue
        top, bottom = group.loc[group["mean"].idxmax()], group.loc[group["mean"].idxmin()]
        rows.append({"knob": knob, "low_value": low, "high_value": high, "by": by,
                     "spread": top["mean"] - bottom["mean"], "top_value": top["by_value"],
                     "bottom_value": bottom["by_value"],
                     "depends": bool(top["ci_low"] > bottom["ci_high"])})
    frame = pd.DataFrame(rows, columns=["knob", "low_value", "high_value", "by", "spread",
                                        "top_value", "bottom_value", "depends"])
    best = frame.groupby(["knob", "low_value", "high_value"], sort=False)["spread"].idxmax()
    frame["chosen"] = frame.index.isin(best.to_numpy())
    return frame


def interacting_knob(space: WholeSpace, knob: str) -> str | None:
    """The knob whose strata spread most over any step of `knob` (None without strata)."""
    spreads = space.spreads[space.spreads["knob"] == knob]
    return None if spreads.empty else str(spreads.loc[spreads["spread"].idxmax(), "by"])


# ---------------------------------------------------------------- importance

def knob_importance(configs: pd.DataFrame) -> dict[str, float]:
    """Optuna's PED-ANOVA importance of the knobs that vary, on an in-memory study of the config
    means ({} when the top configs would be half the table or more: too few to say)."""
    varying = [knob for knob in KNOBS if configs[knob].nunique() > 1]
    quantile = max(TARGET_QUANTILE, MIN_TOP_CONFIGS / max(len(configs), 1))
    if not varying or quantile >= 0.5:
        return {}
    distributions = {knob: _distribution(sorted(configs[knob].unique())) for knob in varying}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
    try:
        study = optuna.create_study(direction="maximize")
        study.add_trials([optuna.trial.create_trial(
            value=float(row["mean"]), params={knob: _plain(row[knob]) for knob in varying},
            distributions=distributions) for _, row in configs.iterrows()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental class; few trials in a regime
            importance = optuna.importance.get_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator(target_quantile=quantile))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {knob: float(importance.get(knob, 0.0)) for knob in
            sorted(varying, key=lambda k: -importance.get(k, 0.0))}


def _distribution(values: list) -> BaseDistribution:
    """Evenly spaced ints as an int range (PED-ANOVA uses their order), others as categories."""
    steps = set(np.diff(values).tolist())
    if len(steps) == 1 and all(isinstance(_plain(v), int) for v in values):
        return IntDistribution(_plain(values[0]), _plain(values[-1]), step=_plain(steps.pop()))
    return CategoricalDistribution([_plain(v) for v in values])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------- all of it

def whole_space(rows: list[dict[str, Any]], space: str = "faq") -> WholeSpace:
    """Every answer for the rows of a reference table (one fidelity: the one with most configs)."""
    kept, note = one_fidelity(rows)
    configs = config_frame(kept)
    pairs = pd.concat([matched_pairs(configs, knob) for knob in KNOBS], ignore_index=True)
    pairs = pairs.astype({knob: "Int64" for knob in KNOBS})  # a knob's own column is empty
    strata = strata_summaries(pairs)
    return WholeSpace(configs=configs, pairs=pairs, steps=step_summaries(pairs), strata=strata,
                      spreads=strata_spreads(strata), importance=knob_importance(configs),
                      space=space, epochs=float(configs["epochs"].iloc[0]), note=note)
