"""What a confirm race measures, chosen from studies without training anything: its targets (a
study's top K distinct configs and, by default, the configs one grid step from the best in each
searched network knob), the confirm study's name, the (config, seed) pairs already measured, and
the comparisons still undecided. bench.race.confirm trains them on held-out seeds.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from bench.store import schema
from bench.store.identity import config_key, config_of, trial_config_key, trial_seed
from bench.evidence import decisions
from bench.evidence.settings import ConfirmSettings
from bench.evidence.gather import Evidence
from bench.search.settings import SearchSettings
from bench.search.spaces import SearchSpace
from mnist_cnn.model import CNNConfig, InvalidConfig

CONFIRM_SUFFIX = "-confirm"
NETWORK_KNOBS = {f.name for f in fields(CNNConfig)}


@dataclass(frozen=True)
class Target:
    """One config to measure with every seed."""

    role: str
    params: dict[str, Any]
    config: CNNConfig
    identity: str  # bench.evidence.measurements config id: network and training


def confirm_name(study_name: str, epochs: int | None, searched_epochs: int) -> str:
    """<study>-confirm at the study's own budget; <study>-epochsE-confirm at another."""
    if epochs is None or epochs == searched_epochs:
        return study_name + CONFIRM_SUFFIX
    return f"{study_name}-epochs{epochs}{CONFIRM_SUFFIX}"


def confirmed_name(study_name: str) -> str:
    """The searched study a confirm study's name belongs to (any other name: itself)."""
    return re.sub(rf"(-epochs\d+)?{CONFIRM_SUFFIX}$", "", study_name)


def search_settings_of(study: optuna.Study, settings: ConfirmSettings) -> SearchSettings:
    """The fidelity the study was searched at, from its stored settings, at `settings.epochs`
    when that is given."""
    stored = study.user_attrs.get(schema.STUDY_ATTR_SETTINGS)
    if not isinstance(stored, dict):
        raise ValueError(f"study {study.study_name!r} was not made by `mnist-bench search`: "
                         "it has no search settings")
    data_dir = stored.get("data_dir")
    table = stored.get("curve_table")
    return SearchSettings(space=stored["space"], epochs=settings.epochs or stored["epochs"],
                          train_size=stored.get("train_size"),
                          validation_size=stored["validation_size"],
                          evaluations_per_epoch=stored["evaluations_per_epoch"],
                          # searches made before interim evaluations scored the whole split
                          interim_validation_size=stored.get("interim_validation_size"),
                          precision=stored.get("precision"),
                          seed=stored["seed"], split_seed=stored.get("split_seed"),
                          data_dir=Path(data_dir) if data_dir else None,
                          results_dir=settings.results_dir, storage=settings.storage,
                          device=settings.device, curve_table=Path(table) if table else None)


def top_targets(study: optuna.Study, top: int | None) -> list[optuna.trial.FrozenTrial]:
    """One trial per distinct config, for the `top` configs (None: all) with the best mean
    value."""
    completed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if schema.ATTR_CONFIG in t.user_attrs]
    if not completed:
        raise ValueError(f"study {study.study_name!r} has no completed trial to confirm; "
                         "let `mnist-bench search` finish one first")
    by_config: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for trial in completed:
        by_config.setdefault(trial_config_key(trial), []).append(trial)
    ranked = sorted(by_config.values(),
                    key=lambda ts: (-sum(t.value for t in ts) / len(ts), ts[0].number))
    return [trials[0] for trials in ranked[:top]]


def neighbours(space: SearchSpace, params: dict[str, Any], knob: str) -> list[dict[str, Any]]:
    """`params` with `knob` one grid step down and one up (those that exist on the grid)."""
    param = next((p for p in space.params if p.name == knob), None)
    if param is None or knob not in params:
        return []
    values = param.grid_points(space.source)
    if params[knob] not in values:
        return []
    index = values.index(params[knob])
    return [{**params, knob: values[i]} for i in (index - 1, index + 1) if 0 <= i < len(values)]


def targets(study: optuna.Study, space: SearchSpace, search: SearchSettings,
            settings: ConfirmSettings) -> tuple[list[Target], list[str]]:
    """The configs to measure (top K, then the sweep), each once, and notes on the skipped ones
    and the substituted pairs.

    Every searched network knob gets a pair: when none of the best's neighbours in a knob can
    be measured (over the FLOP limit, invalid), the pair is the nearest measurable one around
    the next config in the search's ranking (the top K first), and a note says which."""
    chosen: dict[str, Target] = {}
    skipped = []

    def add(role: str, params: dict[str, Any], quiet: bool = False) -> bool:
        config, train_settings = space.build(params, search.plan())
        try:
            space.check(config)
        except InvalidConfig as error:
            if not quiet:
                skipped.append(f"not measured: {params_text(params)}: {error}")
            return False
        identity = config_key(config_of(asdict(config), asdict(train_settings)))
        chosen.setdefault(identity, Target(role, params, config, identity))
        return True

    ranking = top_targets(study, None)
    for trial in ranking[:settings.top]:
        add("top", dict(trial.params))
    if not settings.sweep:
        return list(chosen.values()), skipped
    best = dict(ranking[0].params)
    for knob in [p.name for p in space.params if p.name in NETWORK_KNOBS]:
        if [add("sweep", params) for params in neighbours(space, best, knob)].count(True):
            continue
        for rank, trial in enumerate(ranking[1:], start=2):
            anchor = dict(trial.params)
            pair = next((params for params in neighbours(space, anchor, knob)
                         if add("sweep", params, quiet=True)), None)
            if pair is not None:
                add("top" if rank <= settings.top else "sweep", anchor)
                skipped.append(f"{knob}: the best's neighbours cannot be measured, so its pair "
                               f"is {params_text(anchor)} (the search's #{rank} config) against "
                               f"{knob}={pair[knob]}")
                break
    return list(chosen.values()), skipped


def params_text(params: dict[str, Any]) -> str:
    """A config's searched params as "knob=value, ..." for notes and progress."""
    return ", ".join(f"{k}={v}" for k, v in params.items())


def measured_pairs(study: optuna.Study) -> set[tuple[str, int]]:
    """(config id, seed) of the study's completed measurements."""
    return {(trial_config_key(t), trial_seed(t))
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if schema.ATTR_CONFIG in t.user_attrs}


def open_comparisons(evidence: Evidence | None, targets: dict[str, Target],
                     fidelity: str) -> set[tuple[str, str]]:
    """The undecided comparisons among the targets at the race's budget (`fidelity`): each
    config against the best, and each FAQ pair, as (config id, config id)."""
    budget = evidence.budget(fidelity) if evidence is not None else None
    if budget is None:
        return set()
    ranked = budget.ranked
    best = ranked[ranked["is_best"]]["config_key"].iloc[0]
    undecided = {(config, best) for config in
                 ranked[ranked["decision"] == decisions.UNDECIDED]["config_key"]}
    if len(evidence.pairs):
        pairs = evidence.pairs[(evidence.pairs["decision"] == decisions.UNDECIDED)
                               & (evidence.pairs["fidelity_key"] == fidelity)]
        undecided |= set(zip(pairs["low_config"], pairs["high_config"]))
    return {(a, b) for a, b in undecided if a in targets and b in targets}
