"""Completed trials of any studies -> one row per measurement: (config, fidelity, seed).

A config is what a search chooses: the network and how it is trained (batch size, learning rate,
schedule, ...). The fidelity is everything else that decides what a value means: epochs,
evaluations, train and validation sizes, data, device kind and split (bench.store.identity keys
both). So configs that differ in training settings are ranked together, and only the fidelity
keeps measurements apart.

A replayed trial, or the same config measured in two studies at the same fidelity with the same
seed, is one measurement, not two: the row keeps how many trials asked for it (`queries`).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import optuna
import pandas as pd
from optuna.trial import TrialState

from bench.store import schema
from bench.store.identity import (KNOBS, config_key, fidelity_key, config_of,
                                  trial_fidelity, trial_seed)

COLUMNS = ["fidelity_key", "config_key", "seed", "validation_accuracy", "selection", "loss_gap",
           "accuracy_gap", "gap_images", "queries", "study", "trial", "config", *KNOBS,
           "parameters", "flops_per_image", "latency_ms_batch1", "train_images_per_second",
           "training_seconds", "train_images", "epochs", "resolution", "curve"]


DEFAULT_VALIDATION_SIZE = 5000  # for trials that did not record their fidelity


def is_search(study: optuna.Study) -> bool:
    """A study whose values selected configs: made by search (or compare, grid), not confirm.
    Its measurements are selection values; a confirm study's are held out."""
    attrs = study.user_attrs
    return schema.STUDY_ATTR_SETTINGS in attrs and schema.STUDY_ATTR_CONFIRM not in attrs


def measurements(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """One row per distinct (fidelity, config, seed) over the completed, fully trained trials.

    `selection` is True where a search's trial reported the measurement: it helped choose the
    config, so it never decides anything (bench.evidence.decisions). Studies made outside this
    package (no search settings) count as held out.
    """
    rows: dict[tuple, dict] = {}
    for study in studies:
        search_settings = study.user_attrs.get(schema.STUDY_ATTR_SETTINGS) or {}
        selection = is_search(study)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            row = _row(study.study_name, trial, search_settings)
            if row is None:
                continue
            key = (row["fidelity_key"], row["config_key"], row["seed"])
            if key in rows:
                rows[key]["queries"] += 1
                rows[key]["selection"] |= selection
                continue
            rows[key] = {**row, "selection": selection}
    frame = pd.DataFrame(list(rows.values()), columns=COLUMNS)
    return frame.sort_values(["fidelity_key", "config_key", "seed"], kind="stable",
                             ignore_index=True)


def _row(study_name: str, trial: optuna.trial.FrozenTrial,
         search_settings: dict[str, Any]) -> dict | None:
    attrs = trial.user_attrs
    config = attrs.get(schema.ATTR_CONFIG)
    curve = attrs.get(schema.ATTR_LEARNING_CURVE) or []
    settings = attrs.get(schema.ATTR_TRAIN_SETTINGS) or {}
    planned = int(settings.get("epochs", 0)) * int(settings.get("evaluations_per_epoch", 0))
    seed = trial_seed(trial)
    if not config or not curve or len(curve) < planned or seed is None or trial.value is None:
        return None  # not a whole measurement (stopped early, or from before curves were kept)
    fidelity = trial_fidelity(trial, search_settings)
    config = config_of(config, settings)
    last = curve[-1]
    train_images = fidelity.get("train_size")
    validation_images = int(fidelity.get("validation_size") or DEFAULT_VALIDATION_SIZE)
    return {
        "fidelity_key": fidelity_key(fidelity), "config_key": config_key(config), "seed": int(seed),
        "validation_accuracy": float(trial.value),
        **fitting_gaps(last, min(validation_images, int(train_images or validation_images))),
        "queries": 1, "study": study_name, "trial": trial.number, "config": config,
        **{knob: config.get(knob) for knob in KNOBS},
        "parameters": attrs.get(schema.ATTR_PARAMETERS),
        "flops_per_image": attrs.get(schema.ATTR_FLOPS_PER_IMAGE),
        "latency_ms_batch1": attrs.get(schema.ATTR_LATENCY_MS_BATCH1),
        "train_images_per_second": attrs.get(schema.ATTR_TRAIN_IMAGES_PER_SECOND),
        "training_seconds": float(sum(point.get("seconds") or 0.0 for point in curve)),
        "train_images": train_images, "epochs": settings.get("epochs"),
        # one validation image: the finest step an accuracy moves in
        "resolution": 1.0 / validation_images,
        "curve": curve,  # every evaluation, for what a budget of 2+ epochs shows (overfitting)
    }


def fitting_gaps(record: dict[str, Any], subset_images: int) -> dict[str, float]:
    """Over-fitting at a curve's last record: validation loss minus the loss on the training
    subset (`loss_gap`), training-subset accuracy minus validation accuracy (`accuracy_gap`),
    and the subset's size (`gap_images`: as many as validation, at most the training images).
    NaN for curves recorded before the training subset was scored: their `train_loss` is the
    mean of pre-step minibatch losses, no measure of fitting."""
    loss, accuracy = record.get("train_subset_loss"), record.get("train_subset_accuracy")
    return {
        "loss_gap": (float(record["validation_loss"]) - float(loss)
                     if loss is not None else math.nan),
        "accuracy_gap": (float(accuracy) - float(record["validation_accuracy"])
                         if accuracy is not None else math.nan),
        "gap_images": float(subset_images) if loss is not None else math.nan,
    }
