"""The FAQ answered over the whole faq space from a reference table: one value per config, every
matched pair of configs (identical except one knob, at neighbouring values of it), each step's
effect among working networks (bench.evidence.working_effects) and Optuna's knob importance, all
from one per-config frame so that every table, sentence and plot agrees.

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

from bench.evidence.working_effects import POOLING, WorkingEffects, pooling_kind, working_effects
from bench.store.curves import curve_value
from bench.store.identity import KNOBS, measurement_keys, normalized_config

TARGET_QUANTILE, MIN_TOP_CONFIGS = 0.1, 5
IMPORTANCE_METHOD = (f"Optuna's PED-ANOVA, PedAnovaImportanceEvaluator, normalized to sum to 1: "
                     f"what it takes to reach the top {TARGET_QUANTILE:.0%} of configs, at least "
                     f"{MIN_TOP_CONFIGS} of them, on an in-memory study of the config means; "
                     "fANOVA needs scikit-learn, which is not installed")


@dataclass(frozen=True)
class WholeSpace:
    """Every answer over the table, from one per-config frame, so sentences and plots agree."""

    configs: pd.DataFrame  # one row per config: knobs, seeds, mean, sd, flops_per_image
    pairs: pd.DataFrame  # every matched pair of every knob
    working: WorkingEffects  # each step among working networks, dependence, failing configs
    importance: dict[str, float]  # normalized PED-ANOVA importance per knob ({} when too few)
    space: str
    epochs: float
    note: str  # what was left out (other fidelities), or ""


# ---------------------------------------------------------------- rows -> one value per config

def one_fidelity(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The complete rows of the fidelity with the most configs, and a note naming what was left
    out: configs trained differently never answer each other."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("complete"):
            key = measurement_keys(row["config"], row["fidelity"]).fidelity
            groups.setdefault(key, []).append(row)
    if not groups:
        raise ValueError(f"no complete rows among {len(rows)}: nothing to answer")
    counts = {key: len({measurement_keys(row["config"], row["fidelity"]).config
                        for row in group})
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
    if len({measurement_keys(row["config"], row["fidelity"]).fidelity for row in rows}) > 1:
        raise ValueError("rows of several fidelities: pick one with one_fidelity(rows) first")
    by_config: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        key = measurement_keys(row["config"], row["fidelity"]).config
        by_config.setdefault(key, []).append(row)
    frame = []
    for key, group in by_config.items():
        config = normalized_config(group[0]["config"])
        values = np.array([curve_value(row["curve"]) for row in group])
        measurements = group[0].get("measurements") or {}
        frame.append({
            "config_key": key, **{knob: config[knob] for knob in KNOBS},
            POOLING: pooling_kind(config["pool_size"], config["pool_stride"]),
            "rest": json.dumps({k: v for k, v in config.items() if k not in KNOBS}, sort_keys=True),
            "seeds": len(values), "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
            "flops_per_image": measurements.get("flops_per_image", np.nan),
            "parameters": measurements.get("parameters", np.nan),
            "epochs": float(group[0]["fidelity"]["train_settings"]["epochs"]),
        })
    return pd.DataFrame(frame)


# ---------------------------------------------------------------- matched pairs

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
        "low_config": matched["config_key_low"], "high_config": matched["config_key_high"],
        "low_mean": matched["mean_low"], "high_mean": matched["mean_high"],
        "difference": matched["mean_high"] - matched["mean_low"],
        **{k: matched[k] for k in fixed}, POOLING: matched[f"{POOLING}_low"]}, columns=columns)
    return pairs.sort_values(["low_value", *fixed], kind="stable", ignore_index=True)


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
    epochs = float(configs["epochs"].iloc[0])
    return WholeSpace(configs=configs, pairs=pairs, working=working_effects(configs, pairs, epochs),
                      importance=knob_importance(configs),
                      space=space, epochs=epochs, note=note)
