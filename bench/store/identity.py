"""What a measurement is of: one config identity and one fidelity, for every part of the suite.

A measurement is (config, fidelity, seed) -> curve, value, cost. The curve table stores a row as
the network (`CNNConfig`) and the full `Fidelity` (every training setting but the seed, the data,
the split, the device kind). The evidence ranks configs as a network *with its training knobs*
(batch size, learning rate, ...), so that a space that searches them ranks their settings
together, under the *budget* (`Fidelity.budget`): the same information, partitioned
differently. `config_key` and (`config_id`, `fidelity_id`) therefore group the same rows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

from bench.store import schema
from mnist_cnn.data import data_fingerprint
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import TrainSettings, resolve_precision

# The tutorial FAQ's five knobs, in the order its questions ask them.
KNOBS = ("kernel_size", "stride", "pool_size", "pool_stride", "fc_width")
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
    network = trial.user_attrs.get(schema.ATTR_CONFIG)
    if not network:
        return None
    return config_id(measured_config(network, trial.user_attrs.get(schema.ATTR_TRAIN_SETTINGS) or {}))


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
    """A short stable id of a fidelity record (bench.store.curves.Fidelity.record())."""
    return hashlib.sha256(json.dumps(fidelity, sort_keys=True).encode()).hexdigest()[:12]


def trial_seed(trial: optuna.trial.FrozenTrial) -> int | None:
    """The training seed behind a trial's value (the drawn one, when it was replayed)."""
    seed = trial.user_attrs.get(schema.ATTR_SEED)
    if seed is None:
        seed = (trial.user_attrs.get(schema.ATTR_TRAIN_SETTINGS) or {}).get("seed")
    return seed


def trial_fidelity(trial: optuna.trial.FrozenTrial, search_settings: dict[str, Any]) -> dict:
    """The trial's fidelity: its recorded one (trials recorded before fidelities were: the same
    fields rebuilt from its train settings and its study's search settings), with the training
    settings that belong to the config taken out."""
    recorded = trial.user_attrs.get(schema.ATTR_FIDELITY)
    if recorded:
        return budget(recorded)
    settings = trial.user_attrs.get(schema.ATTR_TRAIN_SETTINGS) or {}
    return budget({"train_settings": settings, "train_size": search_settings.get("train_size"),
                   "validation_size": search_settings.get("validation_size"),
                   "data": search_settings.get("data_dir") or "shipped",
                   "device_kind": search_settings.get("device") or "unrecorded"})


def budget(fidelity: dict[str, Any]) -> dict[str, Any]:
    """A fidelity record without the seed and the training knobs that belong to the config:
    what the budget fixes, under which the evidence ranks configs."""
    values = dict(fidelity)
    values["train_settings"] = {k: v for k, v in (values.get("train_settings") or {}).items()
                                if k != "seed" and k not in TRAINING_KNOBS}
    return values


# Training settings added after curves were first recorded, with the value every older curve had:
# left out of the fidelity at that value, so older rows still match.
ADDED_LATER = {"interim_validation_size": None, "precision": None}


@dataclass(frozen=True)
class Fidelity:
    """Everything a learning curve depends on besides the network and the seed.

    Same config, fidelity and seed: the same curve. Same config and fidelity, other seeds: repeated
    measurements of one thing, whose spread is the noise every comparison has to beat.
    """

    train_settings: dict[str, Any]  # dataclasses.asdict(TrainSettings) without the seed
    train_size: int  # images trained on per epoch
    validation_size: int
    data: str  # mnist_cnn.data.data_fingerprint: "shipped" or the training files' digest
    device_kind: str  # "cpu" or "cuda": speed (and rounding) differ
    # The seed of the validation split and train subset (TrainValidationSplit.seed): curves
    # scored on different splits never answer each other. None: a row recorded before the split
    # was kept (schema version 2), which no query matches.
    split_seed: int | None

    @classmethod
    def of(cls, settings: TrainSettings, train_size: int, validation_size: int,
           data_dir: Path | str | None, device_kind: str, split_seed: int) -> "Fidelity":
        data = data_fingerprint(data_dir)
        values = asdict(settings)
        device = torch.device(device_kind)
        if resolve_precision(device, settings.precision) == resolve_precision(device):
            values["precision"] = None  # the device's default, named or not: one fidelity
        train_settings = {k: v for k, v in values.items()
                          if k != "seed" and not (k in ADDED_LATER and v == ADDED_LATER[k])}
        return cls(train_settings, int(train_size), int(validation_size), data, device_kind,
                   int(split_seed))

    @property
    def planned_evaluations(self) -> int:
        return int(self.train_settings["epochs"]) * int(self.train_settings["evaluations_per_epoch"])

    def record(self) -> dict[str, Any]:
        """JSON-ready, for a trial's user attrs: the report groups measurements by it."""
        return canonical(asdict(self))

    def budget(self) -> dict[str, Any]:
        """The record without the training knobs that belong to the config (see `budget`)."""
        return budget(self.record())

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Fidelity":
        """The inverse of `record`; a record from before the split was kept has split_seed None."""
        return cls(**{"split_seed": None, **record})


def config_key(config: CNNConfig | dict, fidelity: Fidelity | dict) -> str:
    """A hash of the canonical JSON of config and fidelity: one config's measurements, any seed."""
    config_dict = asdict(config) if isinstance(config, CNNConfig) else dict(config)
    fidelity_dict = asdict(fidelity) if isinstance(fidelity, Fidelity) else dict(fidelity)
    text = json.dumps({"config": canonical(normalized_config(config_dict)),
                       "fidelity": canonical(fidelity_dict)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def curve_key(config: CNNConfig | dict, fidelity: Fidelity | dict, seed: int) -> str:
    """The row key: config, fidelity and seed."""
    return hashlib.sha256(f"{config_key(config, fidelity)}/{int(seed)}".encode()).hexdigest()


def canonical(value: Any) -> Any:
    """What JSON gives back: tuples as lists, so a stored key matches a fresh one."""
    return json.loads(json.dumps(value, sort_keys=True))


