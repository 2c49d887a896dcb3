"""Completed trials of any studies -> one row per measurement: (config, fidelity, seed).

A config is what a search chooses: the network and how it is trained (batch size, learning rate,
schedule, ...). The fidelity is what the budget fixes: epochs, evaluations, train and validation
sizes, data and device kind. So configs that differ in training settings are ranked together, and
only the budget keeps measurements apart.

A replayed trial, or the same config measured in two studies at the same fidelity with the same
seed, is one measurement, not two: the row keeps how many trials asked for it (`queries`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

import optuna
import pandas as pd
from optuna.trial import TrialState

from bench import layout

# The tutorial FAQ's five knobs, in the order its questions ask them.
KNOBS = ("kernel_size", "stride", "pool_size", "pool_stride", "fc_width")
COLUMNS = ["fidelity_id", "config_id", "seed", "validation_accuracy", "loss_gap", "queries",
           "study", "trial", "config", *KNOBS, "parameters", "flops_per_image",
           "latency_ms_batch1", "train_images_per_second", "training_seconds", "train_images",
           "epochs"]


# Training settings that belong to a config (what it is), not to the fidelity (what it costs).
TRAINING_KNOBS = ("batch_size", "learning_rate", "weight_decay", "lr_schedule", "augment")
TRAINING_NAMES = {"batch_size": "batch", "learning_rate": "lr", "weight_decay": "weight decay",
                  "lr_schedule": "schedule", "augment": "augment"}


def measured_config(network: dict[str, Any], train_settings: dict[str, Any]) -> dict[str, Any]:
    """The network with the training settings that are part of the config, under "training"."""
    training = {k: train_settings[k] for k in TRAINING_KNOBS if k in train_settings}
    return {**normalized_config(network), "training": training}


def trial_config_id(trial: optuna.trial.FrozenTrial) -> str | None:
    """The config id of a trial: its network and training (None when it recorded no config)."""
    network = trial.user_attrs.get(layout.ATTR_CONFIG)
    if not network:
        return None
    return config_id(measured_config(network, trial.user_attrs.get(layout.ATTR_TRAIN_SETTINGS) or {}))


def normalized_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config with its pool stride spelled out (None means the pool size): equal networks,
    equal dicts."""
    values = dict(config)
    values["pool_stride"] = values.get("pool_stride") or values.get("pool_size")
    if isinstance(values.get("channels"), tuple):
        values["channels"] = list(values["channels"])
    return values


def config_id(config: dict[str, Any]) -> str:
    """A config as canonical JSON: equal networks, equal ids, whatever study measured them."""
    return json.dumps(normalized_config(config), sort_keys=True)


def fidelity_id(fidelity: dict[str, Any]) -> str:
    """A short stable id of a fidelity record (bench.curves.Fidelity.record())."""
    return hashlib.sha256(json.dumps(fidelity, sort_keys=True).encode()).hexdigest()[:12]


def trial_seed(trial: optuna.trial.FrozenTrial) -> int | None:
    """The training seed behind a trial's value (the drawn one, when it was replayed)."""
    seed = trial.user_attrs.get(layout.ATTR_SEED)
    if seed is None:
        seed = (trial.user_attrs.get(layout.ATTR_TRAIN_SETTINGS) or {}).get("seed")
    return seed


def trial_fidelity(trial: optuna.trial.FrozenTrial, search_settings: dict[str, Any]) -> dict:
    """The trial's fidelity: its recorded one (trials recorded before fidelities were: the same
    fields rebuilt from its train settings and its study's search settings), with the training
    settings that belong to the config taken out."""
    recorded = trial.user_attrs.get(layout.ATTR_FIDELITY)
    if recorded:
        fidelity = dict(recorded)
    else:
        settings = trial.user_attrs.get(layout.ATTR_TRAIN_SETTINGS) or {}
        fidelity = {"train_settings": settings, "train_size": search_settings.get("train_size"),
                    "validation_size": search_settings.get("validation_size"),
                    "data": search_settings.get("data_dir") or "shipped",
                    "device_kind": search_settings.get("device") or "unrecorded"}
    fidelity["train_settings"] = {k: v for k, v in (fidelity.get("train_settings") or {}).items()
                                  if k != "seed" and k not in TRAINING_KNOBS}
    return fidelity


def measurements(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """One row per distinct (fidelity, config, seed) over the completed, fully trained trials."""
    rows: dict[tuple, dict] = {}
    for study in studies:
        search_settings = study.user_attrs.get("search_settings") or {}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            row = _row(study.study_name, trial, search_settings)
            if row is None:
                continue
            key = (row["fidelity_id"], row["config_id"], row["seed"])
            if key in rows:
                rows[key]["queries"] += 1
                continue
            rows[key] = row
    frame = pd.DataFrame(list(rows.values()), columns=COLUMNS)
    return frame.sort_values(["fidelity_id", "config_id", "seed"], kind="stable",
                             ignore_index=True)


def _row(study_name: str, trial: optuna.trial.FrozenTrial,
         search_settings: dict[str, Any]) -> dict | None:
    attrs = trial.user_attrs
    config = attrs.get(layout.ATTR_CONFIG)
    curve = attrs.get(layout.ATTR_LEARNING_CURVE) or []
    settings = attrs.get(layout.ATTR_TRAIN_SETTINGS) or {}
    planned = int(settings.get("epochs", 0)) * int(settings.get("evaluations_per_epoch", 0))
    seed = trial_seed(trial)
    if not config or not curve or len(curve) < planned or seed is None or trial.value is None:
        return None  # not a whole measurement (stopped early, or from before curves were kept)
    fidelity = trial_fidelity(trial, search_settings)
    config = measured_config(config, settings)
    last = curve[-1]
    train_images = fidelity.get("train_size")
    return {
        "fidelity_id": fidelity_id(fidelity), "config_id": config_id(config), "seed": int(seed),
        "validation_accuracy": float(trial.value),
        # Over-fitting shows as validation loss above training loss at the end of training.
        "loss_gap": float(last["validation_loss"]) - float(last["train_loss"]),
        "queries": 1, "study": study_name, "trial": trial.number, "config": config,
        **{knob: config.get(knob) for knob in KNOBS},
        "parameters": attrs.get("parameters"), "flops_per_image": attrs.get("flops_per_image"),
        "latency_ms_batch1": attrs.get("latency_ms_batch1"),
        "train_images_per_second": attrs.get("train_images_per_second"),
        "training_seconds": float(sum(point.get("seconds") or 0.0 for point in curve)),
        "train_images": train_images, "epochs": settings.get("epochs"),
    }
