"""Small Optuna studies with known values, written the way the search writes them (for report tests)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from bench.store import layout, schema
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import TrainSettings

DISTRIBUTIONS = {
    "kernel_size": CategoricalDistribution([3, 5, 7]),
    "stride": CategoricalDistribution([1, 2]),
    "pool_size": CategoricalDistribution([1, 2, 3]),
    "fc_width": CategoricalDistribution([64, 128, 256]),
}
PLANNED_EPOCHS = 3

# (state, params, value, measured attrs, epochs trained); a curve is made up to the epochs trained.
ALPHA_TRIALS = [
    ("complete", dict(kernel_size=3, stride=1, pool_size=2, fc_width=128), 0.9850,
     dict(parameters=100_000, flops_per_image=1_000_000, latency_ms_batch1=0.25,
          inference_images_per_second=40_000.0, train_images_per_second=9_000.0, seconds=10.0), 3),
    ("complete", dict(kernel_size=5, stride=1, pool_size=2, fc_width=128), 0.9906,
     dict(parameters=200_000, flops_per_image=2_000_000, latency_ms_batch1=0.5,
          inference_images_per_second=20_000.0, train_images_per_second=6_000.0, seconds=20.0), 3),
    ("complete", dict(kernel_size=7, stride=1, pool_size=2, fc_width=256), 0.9910,
     dict(parameters=400_000, flops_per_image=3_800_000, latency_ms_batch1=1.0,
          inference_images_per_second=10_000.0, train_images_per_second=3_000.0, seconds=40.0), 3),
    ("pruned", dict(kernel_size=7, stride=2, pool_size=2, fc_width=64), 0.9500,
     dict(parameters=50_000, flops_per_image=500_000, latency_ms_batch1=0.2,
          inference_images_per_second=50_000.0, train_images_per_second=12_000.0, seconds=4.0), 1),
    ("pruned", dict(kernel_size=5, stride=2, pool_size=1, fc_width=64), 0.9700,
     dict(parameters=60_000, flops_per_image=600_000, latency_ms_batch1=0.2,
          inference_images_per_second=45_000.0, train_images_per_second=11_000.0, seconds=8.0), 2),
    ("invalid", dict(kernel_size=7, stride=2, pool_size=3, fc_width=64), None, {}, 0),
    ("failed", dict(kernel_size=3, stride=2, pool_size=3, fc_width=256), None, {}, 0),
]


def curve(best: float, epochs: int) -> list[dict]:
    """A rising learning curve that ends at `best` after `epochs` epochs."""
    return [dict(epoch=float(e), train_loss=0.5 / e, validation_loss=0.4 / e,
                 validation_accuracy=best - 0.01 * (epochs - e), seconds=2.0 * e,
                 images_per_second=5000.0) for e in range(1, epochs + 1)]


def add_trial(study: optuna.Study, state: str, params: dict, value, measured: dict, epochs: int):
    config = CNNConfig(channels=(32, 64), kernel_size=params["kernel_size"], stride=params["stride"],
                       pool_size=params["pool_size"], fc_width=params["fc_width"])
    attrs = {schema.ATTR_CONFIG: asdict(config),
             schema.ATTR_TRAIN_SETTINGS: asdict(TrainSettings(epochs=PLANNED_EPOCHS)), **measured}
    optuna_state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                    "invalid": TrialState.PRUNED, "failed": TrialState.FAIL}[state]
    intermediate = {}
    if epochs:
        attrs[schema.ATTR_LEARNING_CURVE] = curve(value, epochs)
        attrs["epochs_trained"] = epochs
        intermediate = {e: value - 0.01 * (epochs - e) for e in range(1, epochs + 1)}
    if state == "invalid":
        attrs[schema.ATTR_INVALID_REASON] = "feature map collapses to 0x0 after block 2"
    if state in ("pruned", "failed"):
        attrs[schema.ATTR_END_REASON] = state
    study.add_trial(create_trial(state=optuna_state, value=value, params=params,
                                 distributions=DISTRIBUTIONS, user_attrs=attrs,
                                 intermediate_values=intermediate))


def write_study(results_dir: Path, name: str, trials=ALPHA_TRIALS) -> optuna.Study:
    (layout.study_dir(results_dir, name)).mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=layout.sqlite_url(results_dir, name),
                                direction="maximize")
    study.set_user_attr("search_settings", {"space": "faq", "epochs": PLANNED_EPOCHS})
    for trial in trials:
        add_trial(study, *trial)
    return study


def write_finetune(results_dir: Path, study: str, run: str, trial_number: int,
                   mean: float = 0.9921, std: float = 0.0004) -> Path:
    matrix = [[98 if i == j else (2 if j == (i + 1) % 10 else 0) for j in range(10)]
              for i in range(10)]
    metrics = {"trial_number": trial_number, "config": {}, "test_accuracy_mean": mean,
               "test_accuracy_std": std,
               "repeats": [{"seed": s, "test_accuracy": mean, "test_loss": 0.03} for s in range(3)],
               "per_class_accuracy": [0.98] * 10, "confusion_matrix": matrix,
               "test_images": 10_000, "test_data": "the shipped MNIST",
               "parameters": 400_000, "flops_per_image": 3_800_000, "latency_ms_batch1": 1.0,
               "inference_images_per_second": 10_000.0}
    path = layout.finetune_dir(results_dir, study, run) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))
    return path
