"""A hand-built compare group (2 samplers x 2 pruners x 2 seeds x 3 trials) with known costs and
values, written the way bench.compare and the search write them (for report tests).

Every evaluation costs SECONDS_PER_EVALUATION training seconds; a full curve is
PLANNED_EVALUATIONS evaluations (1 epoch x 4 evaluations), so a complete trial costs 20 s.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import optuna
from optuna.trial import TrialState, create_trial
from report_studies import DISTRIBUTIONS

from bench import layout
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import TrainSettings

GROUP = "compare-faq"
BEST_IN_TABLE = 0.9920
SECONDS_PER_EVALUATION = 5.0
PLANNED_EVALUATIONS = 4
FULL_SECONDS = SECONDS_PER_EVALUATION * PLANNED_EVALUATIONS
WALL_EXTRA_SECONDS = 3.0  # a trained trial's wall time ("seconds") beyond its training seconds


class Trial(NamedTuple):
    state: str  # complete, pruned or invalid
    value: float | None = None
    evaluations: int = 0  # learning-curve records, each SECONDS_PER_EVALUATION long
    replayed: bool = True  # answered from the curve table (whose curves are complete)


def complete(value: float, replayed: bool = True) -> Trial:
    return Trial("complete", value, PLANNED_EVALUATIONS, replayed)


def pruned(evaluations: int, replayed: bool = True) -> Trial:
    return Trial("pruned", 0.97, evaluations, replayed)


INVALID = Trial("invalid")

# (sampler, pruner) -> one list of trials per seed.
RUNS = {
    ("random", "none"): [[complete(0.9850), complete(0.9900), INVALID],
                         [complete(0.9910, replayed=False), complete(0.9800), complete(0.9870)]],
    ("tpe", "none"): [[complete(0.9880), complete(0.9920), complete(0.9915)],
                      [complete(0.9890), complete(0.9916), INVALID]],
    ("random", "hyperband"): [[complete(0.9890), pruned(1), complete(0.9904)],
                              [pruned(1), complete(0.9900), pruned(2)]],
    ("tpe", "hyperband"): [[complete(0.9920), pruned(1), pruned(1)],
                           [pruned(1), complete(0.9914), pruned(2, replayed=False)]],
}
PARAMS = [dict(kernel_size=3, stride=1, pool_size=2, fc_width=128),
          dict(kernel_size=5, stride=1, pool_size=2, fc_width=256),
          dict(kernel_size=7, stride=2, pool_size=3, fc_width=64)]


def study_name(sampler: str, pruner: str, seed: int, group: str = GROUP) -> str:
    return f"{group}-{sampler}-{pruner}-seed{seed}"


def write_compare_group(results_dir: Path, group: str = GROUP, runs=RUNS,
                        best_in_table: float | None = BEST_IN_TABLE) -> None:
    """One SQLite file results/<group>/study.db holding one study per (sampler, pruner, seed)."""
    layout.study_dir(results_dir, group).mkdir(parents=True, exist_ok=True)
    storage = layout.sqlite_url(results_dir, group)
    for (sampler, pruner), seeds in runs.items():
        for seed, trials in enumerate(seeds):
            name = study_name(sampler, pruner, seed, group)
            study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
            study.set_user_attr("search_settings", {"space": "faq", "sampler": sampler,
                                                    "pruner": pruner, "epochs": 1})
            study.set_user_attr("compare", {
                "group": group, "space": "faq", "sampler": sampler, "pruner": pruner,
                "seed": seed, "trials": len(trials), "curve_table": "results/curves.db",
                "best_in_table": best_in_table, "best_config_in_table": PARAMS[1],
                "table_configs": 45, "grid_configs": 45})
            for number, trial in enumerate(trials):
                add_compare_trial(study, trial, PARAMS[number % len(PARAMS)],
                                  source=f"{GROUP}-grid#{number}")


def add_compare_trial(study: optuna.Study, trial: Trial, params: dict, source: str) -> None:
    config = CNNConfig(channels=(32, 64), kernel_size=params["kernel_size"],
                       stride=params["stride"], pool_size=params["pool_size"],
                       fc_width=params["fc_width"])
    settings = TrainSettings(epochs=1, evaluations_per_epoch=PLANNED_EVALUATIONS)
    attrs = {layout.ATTR_CONFIG: asdict(config), layout.ATTR_TRAIN_SETTINGS: asdict(settings)}
    intermediate = {}
    if trial.state == "invalid":
        attrs[layout.ATTR_INVALID_REASON] = "feature map collapses to 0x0 after block 2"
        attrs["seconds"] = 0.01
    else:
        curve = [dict(epoch=step / PLANNED_EVALUATIONS, train_loss=0.1, validation_loss=0.1,
                      validation_accuracy=trial.value - 0.001 * (trial.evaluations - step),
                      seconds=SECONDS_PER_EVALUATION, images_per_second=4000.0)
                 for step in range(1, trial.evaluations + 1)]
        intermediate = {step: point["validation_accuracy"] for step, point in enumerate(curve, 1)}
        cost = SECONDS_PER_EVALUATION * trial.evaluations
        attrs.update({layout.ATTR_LEARNING_CURVE: curve, "epochs_trained": curve[-1]["epoch"],
                      "parameters": 100_000, "flops_per_image": 1_000_000,
                      "seconds": cost if trial.replayed else cost + WALL_EXTRA_SECONDS})
        if trial.replayed:
            attrs.update({layout.ATTR_REPLAYED: True, layout.ATTR_REPLAYED_FROM: source,
                          layout.ATTR_FULL_SECONDS: FULL_SECONDS})
        if trial.state == "pruned":
            attrs[layout.ATTR_END_REASON] = "pruned at epoch 0.25 (evaluation 1)"
    state = TrialState.COMPLETE if trial.state == "complete" else TrialState.PRUNED
    study.add_trial(create_trial(state=state, value=trial.value, params=params,
                                 distributions=DISTRIBUTIONS, user_attrs=attrs,
                                 intermediate_values=intermediate))
