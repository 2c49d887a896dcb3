"""Measure again what a search found: its top configs and a one-at-a-time sweep, with more seeds.

A search measures each config once, with one seed, and seed noise (about 0.1 pp on MNIST) is as
large as the differences it ranks by. `confirm` retrains the study's top K distinct configs and,
by default, the configs one step away from the best in each searched network knob, with the
search's seed and R more, at the study's fidelity. Each measurement becomes one COMPLETE trial of
an ordinary study `<study>-confirm` in the same storage (plain Optuna reads it) and one row of the
curve table; a measurement the table already has is taken from it, not retrained. Trials are
written only when finished, so a killed run loses only the run in progress and a rerun does the
rest.
"""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from bench.store import schema
from bench.store.curves import CurveTable, StoredCurve
from bench.store.identity import (Fidelity, config_id, measured_config, trial_config_id,
                                  trial_seed)
from bench.search.interrupt import SignalGuard, exit_code
from bench.search.objective import MEASURE_REPEATS
from bench.search.runner import load_search_split, quiet_optuna
from bench.evidence.settings import ConfirmSettings
from bench.search.settings import SearchSettings
from bench.search.spaces import SearchSpace, load_space
from bench.store.studies import StudySource
from mnist_cnn.metrics import count_parameters, flops_per_image, measure_model
from mnist_cnn.model import CNNConfig, InvalidConfig
from mnist_cnn.train import TrainSettings, pick_device, train, use_available_cores

CONFIRM_SUFFIX = "-confirm"
NETWORK_KNOBS = {f.name for f in fields(CNNConfig)}


@dataclass(frozen=True)
class Target:
    """One config to measure with every seed."""

    role: str
    params: dict[str, Any]
    config: CNNConfig
    identity: str  # bench.evidence.measurements config id: network and training


@dataclass
class ConfirmOutcome:
    study_name: str
    confirm_study: str
    configs: int
    seeds: list[int]
    trained: int = 0
    from_table: int = 0
    already: int = 0
    skipped: list[str] | None = None
    seconds: float = 0.0
    signal: int | None = None

    @property
    def exit_code(self) -> int:
        return exit_code(self.signal)

    def summary(self) -> str:
        stopped = f"; stopped by {signal.Signals(self.signal).name}" if self.signal else ""
        return (f"confirm {self.study_name}: {self.configs} configs x seeds "
                f"{', '.join(map(str, self.seeds))}: {self.trained} trained, {self.from_table} "
                f"from the curve table, {self.already} measured before; study "
                f"{self.confirm_study}; {self.seconds:.0f} s{stopped}")


def resolve_study(settings: ConfirmSettings) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    """The source study, named or the only one, and its storage; StudyNotFound (exit 2) when
    there is none."""
    source = StudySource(settings.results_dir, settings.storage)
    return source.load_with_storage(source.choose(settings.study))


def search_settings_of(study: optuna.Study, settings: ConfirmSettings) -> SearchSettings:
    """The fidelity the study was searched at, from its stored settings."""
    stored = study.user_attrs.get(schema.STUDY_ATTR_SETTINGS)
    if not isinstance(stored, dict):
        raise ValueError(f"study {study.study_name!r} was not made by `mnist-bench search`: "
                         "it has no search settings")
    data_dir = stored.get("data_dir")
    table = stored.get("curve_table")
    return SearchSettings(space=stored["space"], epochs=stored["epochs"],
                          train_size=stored.get("train_size"),
                          validation_size=stored["validation_size"],
                          evaluations_per_epoch=stored["evaluations_per_epoch"],
                          # searches made before interim evaluations scored the whole split
                          interim_validation_size=stored.get("interim_validation_size"),
                          precision=stored.get("precision"),
                          seed=stored["seed"], data_dir=Path(data_dir) if data_dir else None,
                          results_dir=settings.results_dir, storage=settings.storage,
                          device=settings.device, curve_table=Path(table) if table else None)


def top_targets(study: optuna.Study, top: int) -> list[optuna.trial.FrozenTrial]:
    """One trial per distinct config, for the `top` configs with the best mean value."""
    completed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if schema.ATTR_CONFIG in t.user_attrs]
    if not completed:
        raise ValueError(f"study {study.study_name!r} has no completed trial to confirm; "
                         "let `mnist-bench search` finish one first")
    by_config: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for trial in completed:
        by_config.setdefault(trial_config_id(trial), []).append(trial)
    ranked = sorted(by_config.values(),
                    key=lambda ts: (-sum(t.value for t in ts) / len(ts), ts[0].number))
    return [trials[0] for trials in ranked[:top]]


def sweep_params(space: SearchSpace, best: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """For each searched network knob, the best params with that knob one grid step either way."""
    for param in space.params:
        if param.name not in NETWORK_KNOBS or param.name not in best:
            continue
        values = param.grid_points(space.source)
        if best[param.name] not in values:
            continue
        index = values.index(best[param.name])
        for neighbour in (index - 1, index + 1):
            if 0 <= neighbour < len(values):
                yield param.name, {**best, param.name: values[neighbour]}


def targets(study: optuna.Study, space: SearchSpace, search: SearchSettings,
            settings: ConfirmSettings) -> tuple[list[Target], list[str]]:
    """The configs to measure (top K, then the sweep), each once, and notes on skipped ones."""
    chosen: dict[str, Target] = {}
    skipped = []

    def add(role: str, params: dict[str, Any]) -> None:
        config, train_settings = space.build(params, search.plan())
        try:
            space.check(config)
        except InvalidConfig as error:
            skipped.append(f"{_describe(params)}: {error}")
            return
        identity = config_id(measured_config(asdict(config), asdict(train_settings)))
        chosen.setdefault(identity, Target(role, params, config, identity))

    best = top_targets(study, settings.top)
    for trial in best:
        add("top", dict(trial.params))
    if settings.sweep:
        for _, params in sweep_params(space, dict(best[0].params)):
            add("sweep", params)
    return list(chosen.values()), skipped


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def run_confirm(settings: ConfirmSettings) -> ConfirmOutcome:
    """Measure every target with every seed that neither study nor table has yet."""
    started = time.perf_counter()
    quiet_optuna()
    study, storage = resolve_study(settings)
    name = study.study_name
    search = search_settings_of(study, settings)
    space = load_space(search.space)
    chosen, skipped = targets(study, space, search, settings)
    seeds = [search.seed + offset for offset in range(settings.seeds + 1)]
    confirm = optuna.create_study(study_name=name + CONFIRM_SUFFIX,
                                  storage=storage,
                                  direction="maximize", load_if_exists=True)
    confirm.set_user_attr(schema.STUDY_ATTR_CONFIRM, name)
    confirm.set_user_attr(schema.STUDY_ATTR_SETTINGS, study.user_attrs[schema.STUDY_ATTR_SETTINGS])
    measured = {(trial_config_id(t), trial_seed(t))
                for source in (study, confirm)
                for t in source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if schema.ATTR_CONFIG in t.user_attrs}
    jobs = [(target, seed) for seed in seeds for target in chosen
            if (target.identity, seed) not in measured]
    outcome = ConfirmOutcome(name, confirm.study_name, len(chosen), seeds,
                             already=len(chosen) * len(seeds) - len(jobs), skipped=skipped)
    distributions = next(t.distributions for t in study.get_trials(deepcopy=False)
                         if t.distributions.keys() >= chosen[0].params.keys())
    if jobs:
        _measure_all(jobs, space, search, settings, confirm, distributions, outcome)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _measure_all(jobs: list[tuple[Target, int]], space: SearchSpace, search: SearchSettings,
                 settings: ConfirmSettings, confirm: optuna.Study,
                 distributions: dict[str, optuna.distributions.BaseDistribution],
                 outcome: ConfirmOutcome) -> None:
    """Train (or take from the table) each job and add it as a finished trial; stop on a signal."""
    use_available_cores()
    device = pick_device(settings.device)
    split = load_search_split(search)
    table = CurveTable(search.curve_table_path)
    bar = tqdm(total=len(jobs), desc=confirm.study_name, unit="run", dynamic_ncols=True)
    with SignalGuard() as guard:
        guard.in_trial = True  # a signal stops the run at once; what finished is in the study
        try:
            for target, seed in jobs:
                _, train_settings = space.build(target.params, search.plan(seed))
                fidelity = Fidelity.of(train_settings, len(split.train), len(split.validation),
                                       search.data_dir, device.type, split.seed)
                stored = table.get(target.config, fidelity, seed)
                if stored is None or not stored.complete:
                    stored = _train(target, train_settings, split, device, table, fidelity,
                                    source=f"{confirm.study_name}#{len(confirm.trials)}")
                    outcome.trained += 1
                    replayed = False
                else:
                    outcome.from_table += 1
                    replayed = True
                confirm.add_trial(_finished_trial(target, train_settings, fidelity, stored,
                                                  distributions, replayed))
                bar.update(1)
                bar.set_postfix_str(f"{_describe(target.params)} seed={seed} "
                                    f"val_acc={stored.best_validation_accuracy:.4f}")
        except KeyboardInterrupt as interrupt:
            outcome.signal = getattr(interrupt, "signum", signal.SIGINT)
        finally:
            bar.close()


def _train(target: Target, train_settings: TrainSettings, split, device, table: CurveTable,
           fidelity: Fidelity, source: str) -> StoredCurve:
    """Train at the study's fidelity, no pruning; the curve goes into the table."""
    result = train(target.config, train_settings, split, device)
    measurements = {"parameters": count_parameters(result.model),
                    "flops_per_image": flops_per_image(result.model),
                    **asdict(measure_model(result.model, repeats=MEASURE_REPEATS,
                                           precision=train_settings.precision))}
    complete = len(result.history) == fidelity.planned_evaluations
    table.put(target.config, fidelity, train_settings.seed, result.history, complete=complete,
              measurements=measurements, source=source)
    return StoredCurve(asdict(target.config), fidelity, train_settings.seed,
                       tuple(result.history), complete, measurements, source)


def _finished_trial(target: Target, train_settings: TrainSettings, fidelity: Fidelity,
                    stored: StoredCurve, distributions: dict, replayed: bool
                    ) -> optuna.trial.FrozenTrial:
    curve = [asdict(r) for r in stored.records]
    attrs = {schema.ATTR_CONFIG: asdict(target.config),
             schema.ATTR_TRAIN_SETTINGS: asdict(train_settings),
             schema.ATTR_FIDELITY: fidelity.record(), schema.ATTR_SEED: stored.seed,
             schema.ATTR_LEARNING_CURVE: curve, schema.ATTR_CONFIRM_ROLE: target.role,
             "epochs_trained": stored.records[-1].epoch,
             "seconds": stored.training_seconds, **stored.measurements}
    if replayed:
        attrs[schema.ATTR_REPLAYED] = True
        attrs[schema.ATTR_REPLAYED_FROM] = stored.source
        attrs[schema.ATTR_FULL_SECONDS] = stored.training_seconds
    return optuna.trial.create_trial(
        state=TrialState.COMPLETE, value=stored.best_validation_accuracy,
        params={k: target.params[k] for k in distributions},
        distributions=distributions, user_attrs=attrs,
        intermediate_values={step: r.validation_accuracy
                             for step, r in enumerate(stored.records, start=1)})
