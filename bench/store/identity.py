"""What a measurement is of: one config key and one fidelity key, for every part of the suite.

A measurement is (config, fidelity, seed) -> curve, value, cost. The config is the network with
the training knobs a space may search (`TRAINING_KNOBS`: batch size, learning rate, ...); the
fidelity is everything else that decides what a value means (epochs, evaluations, subset and
split sizes, the data, the device kind, the split seed). `config_key` and `fidelity_key` make the
two keys; the curve table files a row under them and the evidence groups measurements by them.

What is stored is unchanged: a trial's and a curve row's `fidelity` record (`Fidelity.record()`)
holds every training setting but the seed, knobs included, and a row's `config` the network
alone; the keys take the knobs out of the one and add them to the other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import optuna
import torch

from bench.store import legacy, schema
from mnist_cnn.data import data_fingerprint
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import TrainSettings, resolve_precision

# The tutorial FAQ's five knobs, in the order its questions ask them.
KNOBS = ("kernel_size", "stride", "pool_size", "pool_stride", "fc_width")
# Training settings that belong to a config (what it is), not to the fidelity (what it costs).
TRAINING_KNOBS = ("batch_size", "learning_rate", "weight_decay", "lr_schedule", "augment")
TRAINING_NAMES = {"batch_size": "batch", "learning_rate": "lr", "weight_decay": "weight decay",
                  "lr_schedule": "schedule", "augment": "augment"}


def config_of(network: CNNConfig | dict[str, Any],
              train_settings: dict[str, Any]) -> dict[str, Any]:
    """The config: the network with the training settings that are part of it, under "training"."""
    network_dict = asdict(network) if isinstance(network, CNNConfig) else network
    training = {k: train_settings[k] for k in TRAINING_KNOBS if k in train_settings}
    return {**normalized_config(network_dict), "training": training}


def config_key(config: dict[str, Any]) -> str:
    """The config key: the config (`config_of`) as canonical JSON, so equal configs have equal
    keys whatever study or table measured them. Given a network alone, it keys the network."""
    return json.dumps(normalized_config(config), sort_keys=True)


def fidelity_key(fidelity: "Fidelity | dict[str, Any]") -> str:
    """The fidelity key: a short stable hash of a fidelity record (`Fidelity.record()`) without
    the seed and the training knobs, which belong to the config."""
    record = asdict(fidelity) if isinstance(fidelity, Fidelity) else fidelity
    values = dict(record)
    values["train_settings"] = {k: v for k, v in (values.get("train_settings") or {}).items()
                                if k != "seed" and k not in TRAINING_KNOBS}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


class MeasurementKeys(NamedTuple):
    """What a measurement is of, as keys: its config and its fidelity (the seed aside)."""

    config: str
    fidelity: str


def measurement_keys(network: CNNConfig | dict[str, Any],
                     fidelity: "Fidelity | dict[str, Any]") -> MeasurementKeys:
    """The keys of a network measured at a recorded fidelity: a curve row's, or a trial's (its
    `config` and `fidelity` attrs)."""
    record = asdict(fidelity) if isinstance(fidelity, Fidelity) else fidelity
    return MeasurementKeys(config_key(config_of(network, record.get("train_settings") or {})),
                           fidelity_key(record))


def trial_config_key(trial: optuna.trial.FrozenTrial) -> str | None:
    """The config key of a trial: its network and training (None when it recorded no config)."""
    network = trial.user_attrs.get(schema.ATTR_CONFIG)
    if not network:
        return None
    return config_key(config_of(network, trial.user_attrs.get(schema.ATTR_TRAIN_SETTINGS) or {}))


def normalized_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config with its pool stride spelled out (None means the pool size): equal networks,
    equal dicts."""
    values = dict(config)
    values["pool_stride"] = values.get("pool_stride") or values.get("pool_size")
    if isinstance(values.get("channels"), tuple):
        values["channels"] = list(values["channels"])
    return values


def trial_seed(trial: optuna.trial.FrozenTrial) -> int | None:
    """The training seed behind a trial's value (the drawn one, when it was replayed)."""
    return legacy.recorded_seed(trial.user_attrs)


def trial_fidelity(trial: optuna.trial.FrozenTrial, search_settings: dict[str, Any]) -> dict:
    """The trial's fidelity record, as it recorded it (or rebuilt for a trial recorded before
    fidelities were: see bench.store.legacy)."""
    recorded = trial.user_attrs.get(schema.ATTR_FIDELITY)
    if recorded:
        return recorded
    return legacy.rebuilt_fidelity(trial.user_attrs.get(schema.ATTR_TRAIN_SETTINGS) or {},
                                   search_settings)


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
        added_later = legacy.ADDED_LATER
        train_settings = {k: v for k, v in values.items()
                          if k != "seed" and not (k in added_later and v == added_later[k])}
        return cls(train_settings, int(train_size), int(validation_size), data, device_kind,
                   int(split_seed))

    @property
    def planned_evaluations(self) -> int:
        return int(self.train_settings["epochs"]) * int(self.train_settings["evaluations_per_epoch"])

    def record(self) -> dict[str, Any]:
        """JSON-ready, for a trial's user attrs: the report groups measurements by it."""
        return canonical(asdict(self))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Fidelity":
        """The inverse of `record` (for older records, see bench.store.legacy.fidelity_fields)."""
        return cls(**legacy.fidelity_fields(record))


def canonical(value: Any) -> Any:
    """What JSON gives back: tuples as lists, so a stored key matches a fresh one."""
    return json.loads(json.dumps(value, sort_keys=True))


