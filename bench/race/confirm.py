"""Measure again what a search found: its top configs and a one-at-a-time sweep, on held-out seeds.

A search measures each config once, with one seed, and seed noise (about 0.1 pp on MNIST) is as
large as the differences it ranks by; the seed that made a config look best is also biased. So
`confirm` races the study's top K distinct configs and, by default, the configs one step away
from the best in each searched network knob, on seeds the search did not use, at the study's
fidelity: every config gets `seeds` held-out seeds, then only the configs in a comparison still
undecided (bench.evidence.decisions) get one more per round, up to `max_seeds`, as F-Race and
irace do. Each measurement becomes one COMPLETE trial of
an ordinary study `<study>-confirm` in the same storage (plain Optuna reads it) and one row of the
curve table; a measurement the table already has is taken from it, not retrained. Trials are
written only when finished, so a killed run loses only the run in progress and a rerun does the
rest. What to race is chosen in bench.evidence.targets, which trains nothing; this module trains,
through mnist_cnn.
"""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass, field

import optuna
from optuna.trial import TrialState

from bench.store import schema
from bench.store.curves import CurveTable, StoredCurve
from bench.store.damage import check_curve_table
from bench.store.reference import merge_shipped
from bench.store.identity import Fidelity, fidelity_key
from bench.store.studies import StudySource
from bench.search.interrupt import SignalGuard, exit_code
from bench.search.settings import SearchSettings
from bench.search.spaces import SearchSpace, load_space
from bench.search.study import quiet_optuna
from bench.evidence.decisions import race_rounds
from bench.evidence.reproduction import Reference, study_checks
from bench.evidence.settings import ConfirmSettings
from bench.evidence.gather import decided_line, gather
from bench.evidence.targets import (Target, confirm_name, measured_pairs, open_comparisons,
                                    params_text, search_settings_of, targets)
from bench.store.wording import counted
from mnist_cnn.data import load_split
from mnist_cnn.metrics import TRIAL_MEASURE_REPEATS, measure_model
from mnist_cnn.progress import progress_bar
from mnist_cnn.train import TrainSettings, pick_device, train, use_available_cores


@dataclass
class ConfirmOutcome:
    study_name: str
    confirm_study: str
    configs: int
    max_seeds: int
    trained: int = 0
    from_table: int = 0
    notes: list[str] | None = None  # configs not measured, pairs chosen instead, curves merged
    seconds: float = 0.0
    signal: int | None = None
    rounds: int = 0
    open: set[tuple[str, str]] = field(default_factory=set)  # undecided comparisons at the end
    decided: str = ""  # what the report will say is decided (gather.decided_line)
    out_of_time: bool = False
    reproduction: list[str] = field(default_factory=list)  # against the shipped reference table

    @property
    def exit_code(self) -> int:
        return exit_code(self.signal)

    def summary(self) -> str:
        stopped = f"; stopped by {signal.Signals(self.signal).name}" if self.signal else ""
        if self.out_of_time:
            stopped += "; out of time (rerun to continue the race)"
        state = (f"{counted(len(self.open), 'comparison')} of the race still undecided"
                 if self.open else "every comparison of the race decided")
        if self.decided:  # the report's count, over every config and pair of the studies
            state += f" (the report: {self.decided[0].lower()}{self.decided[1:-1]})"
        return (f"confirm {self.study_name}: a race of {self.configs} configs on held-out seeds "
                f"(at most {self.max_seeds} each), {self.rounds} round"
                f"{'s' if self.rounds != 1 else ''}: {self.trained} trained, {self.from_table} "
                f"from the curve table; {state}; study {self.confirm_study}; "
                f"{self.seconds:.0f} s{stopped}")


def resolve_study(settings: ConfirmSettings) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    """The source study, named or the only one, and its storage; StudyNotFound (exit 2) when
    there is none."""
    source = StudySource(settings.results_dir, settings.storage)
    return source.load_with_storage(source.choose(settings.study))


def run_confirm(settings: ConfirmSettings) -> ConfirmOutcome:
    """Race the targets on held-out seeds until every comparison with the best, and every FAQ
    pair, is decided, or a limit (max seeds, minutes) is reached; a rerun continues the race."""
    started = time.perf_counter()
    quiet_optuna()
    study, storage = resolve_study(settings)
    name = study.study_name
    search = search_settings_of(study, settings)
    space = load_space(search.space)
    chosen, skipped = targets(study, space, search, settings)
    stored = study.user_attrs[schema.STUDY_ATTR_SETTINGS]
    check_curve_table(search.curve_table_path)  # damaged: refused before the race is made
    confirm = optuna.create_study(study_name=confirm_name(name, settings.epochs, stored["epochs"]),
                                  storage=storage,
                                  direction="maximize", load_if_exists=True)
    confirm.set_user_attr(schema.STUDY_ATTR_CONFIRM, name)
    confirm.set_user_attr(schema.STUDY_ATTR_RACE, {"seeds": settings.seeds,
                                                   "max_seeds": settings.max_seeds})
    confirm.set_user_attr(schema.STUDY_ATTR_SETTINGS, {**stored, "epochs": search.epochs})
    by_identity = {target.identity: target for target in chosen}
    searched = measured_pairs(study)  # selection values: these seeds can never be held out
    heldout = {identity: [seed for seed in range(search.seed + 1, search.seed + 1
                                                 + settings.max_seeds + len(searched))
                          if (identity, seed) not in searched][:settings.max_seeds]
               for identity in by_identity}
    # Seeds the shipped reference table measured at this fidelity are taken from it, not trained.
    merged = merge_shipped(settings.results_dir, CurveTable(search.curve_table_path))
    outcome = ConfirmOutcome(name, confirm.study_name, len(chosen), settings.max_seeds,
                             notes=[*skipped, *merged])
    distributions = next(t.distributions for t in study.get_trials(deepcopy=False)
                         if t.distributions.keys() >= chosen[0].params.keys())
    deadline = started + 60 * settings.minutes if settings.minutes else None

    with _Measurer(space, search, settings, confirm, distributions, outcome) as measurer:
        fidelity = measurer.fidelity_key_of(chosen[0])

        def open_configs() -> set[str]:
            evidence = gather([study, confirm], settings.margin)
            outcome.open = open_comparisons(evidence, by_identity, fidelity)
            outcome.decided = decided_line(evidence) if evidence is not None else ""
            return {config for pair in outcome.open for config in pair}

        open_configs()  # what a rerun finds open, for the bar's first round
        for wanted in race_rounds(list(by_identity), settings.seeds, settings.max_seeds,
                                  open_configs):
            done = measured_pairs(confirm)
            jobs = [(by_identity[identity], seed) for identity, count in wanted.items()
                    for seed in heldout[identity][:count] if (identity, seed) not in done]
            outcome.rounds += 1
            if not measurer.measure(jobs, deadline, len(outcome.open)):
                open_configs()  # what the stopped round leaves open (a finished race has it)
                break
    reference = Reference.shipped(settings.results_dir)
    if reference is not None:
        outcome.reproduction = study_checks(
            confirm.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), reference)
    outcome.seconds = time.perf_counter() - started
    return outcome


class _Measurer:
    """Trains (or takes from the table) jobs and adds each as a finished trial, under one
    signal guard and one progress bar for the whole race."""

    def __init__(self, space: SearchSpace, search: SearchSettings, settings: ConfirmSettings,
                 confirm: optuna.Study, distributions: dict, outcome: ConfirmOutcome) -> None:
        self.space, self.search, self.confirm = space, search, confirm
        self.distributions, self.outcome = distributions, outcome
        use_available_cores()
        self.device = pick_device(settings.device)
        self.split = load_split(search.data_dir, search.validation_size, search.data_seed,
                                search.train_size)
        self.table = CurveTable(search.curve_table_path)
        self.guard = SignalGuard()
        self.bar = progress_bar(total=0, desc=confirm.study_name, unit="run")

    def __enter__(self) -> "_Measurer":
        self.guard.__enter__()
        self.guard.in_trial = True  # a signal stops the run at once; what finished is kept
        return self

    def __exit__(self, *exc_info) -> None:
        self.bar.close()
        self.guard.__exit__(*exc_info)

    def measure(self, jobs: list[tuple[Target, int]], deadline: float | None,
                open_count: int) -> bool:
        """Measure the round's jobs; False when a signal or the deadline stopped it."""
        self.bar.total += len(jobs)
        self.bar.refresh()
        try:
            for target, seed in jobs:
                if deadline is not None and time.perf_counter() > deadline:
                    self.outcome.out_of_time = True
                    return False
                stored = self._one(target, seed)
                self.bar.update(1)
                self.bar.set_postfix_str(f"open comparisons={open_count} "
                                         f"{params_text(target.params)} seed={seed} "
                                         f"val_acc={stored.best_validation_accuracy:.4f}")
        except KeyboardInterrupt as interrupt:
            self.outcome.signal = getattr(interrupt, "signum", signal.SIGINT)
            return False
        return True

    def _fidelity(self, train_settings: TrainSettings) -> Fidelity:
        return Fidelity.of(train_settings, len(self.split.train), len(self.split.validation),
                           self.search.data_dir, self.device.type, self.split.seed)

    def fidelity_key_of(self, target: Target) -> str:
        """The fidelity key the race measures `target` at, as the evidence groups it."""
        _, train_settings = self.space.build(target.params, self.search.plan())
        return fidelity_key(self._fidelity(train_settings))

    def _one(self, target: Target, seed: int) -> StoredCurve:
        _, train_settings = self.space.build(target.params, self.search.plan(seed))
        fidelity = self._fidelity(train_settings)
        stored = self.table.get(target.config, fidelity, seed)
        replayed = stored is not None and stored.complete
        if replayed:
            self.outcome.from_table += 1
        else:
            stored = _train(target, train_settings, self.split, self.device, self.table,
                            fidelity, source=f"{self.confirm.study_name}#{len(self.confirm.trials)}")
            self.outcome.trained += 1
        self.confirm.add_trial(_finished_trial(target, train_settings, fidelity, stored,
                                               self.distributions, replayed))
        return stored


def _train(target: Target, train_settings: TrainSettings, split, device, table: CurveTable,
           fidelity: Fidelity, source: str) -> StoredCurve:
    """Train at the study's fidelity, no pruning; the curve goes into the table."""
    result = train(target.config, train_settings, split, device)
    measurements = asdict(measure_model(result.model, repeats=TRIAL_MEASURE_REPEATS,
                                        precision=train_settings.precision))
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
             schema.ATTR_EPOCHS_TRAINED: stored.records[-1].epoch,
             schema.ATTR_SECONDS: stored.training_seconds, **stored.measurements}
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
