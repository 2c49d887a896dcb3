"""Benchmark samplers and pruners: a matrix of ordinary studies answered from the curve table.

Each (sampler, pruner, seed) is one Optuna study named `<group>-<sampler>-<pruner>-seed<k>` in the
group's storage (results/<group>/journal.log by default, Optuna's journal file); seed k seeds
the sampler, and each query of a config draws one of its recorded training seeds but the reserved
ones (bench.search.objective), so replayed values carry measurement noise. The reserved seeds
(by default the highest seed every config of the table has: seed 2 of the shipped faq table) are
the ones no study can draw, and regret is scored on them: the "compare" attr holds the picked
config's mean over the reserved seeds and a cross-fitted baseline, the config whose mean over
the other (replay) seeds is highest, scored on the same reserved seeds, so the best config is
not selected and scored on one seed set. Studies run whole
in worker processes on in-memory storage; the parent writes each finished one's trials and then its
"compare" attr, so a study with that attr is complete (a rerun skips it) and one without was cut
off while being written (a rerun replaces it).
The "compare" study attribute and the study names are scored by bench.benchmark.regret and
worded by the report (bench.report.benchmark);
bench.store.schema names every stored attribute.
In a space of designed points (a measured slice such as faq-tutorial), a trial is a draw of one
of them: draws outside are told to the sampler at chance accuracy, not counted and not written
(the "compare" attr's off_point_draws counts them; _optimize_designed says why).
The reference tables a clone ships (results/reference/*.jsonl) are merged into the curve table
first, so compare on the faq space needs no `grid` of its own.
"""

from __future__ import annotations

import copy
import hashlib
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial
from tqdm import tqdm

from bench.store import layout, schema
from bench.store.curves import CurveTable, StoredCurve
from bench.store.damage import check_curve_table
from bench.store.identity import Fidelity, MeasurementKeys, measurement_keys
from bench.store.reference import merge_shipped
from bench.benchmark.grid import valid_grid
from bench.benchmark.reserved import cross_fitted_baseline, reserved_value, resolve_reserved
from bench.search.objective import Objective
from bench.search.interrupt import SignalGuard, exit_code
from bench.search.settings import PRUNERS, SAMPLERS, SearchSettings
from bench.store.storage import hidden_url, open_journal, open_storage
from bench.search.spaces import SearchSpace, SpaceError, load_space
from bench.search.study import (COUNTED_STATES, check_resumable, make_pruner, make_sampler,
                                quiet_optuna)
from mnist_cnn.data import TrainValidationSplit, load_split
from mnist_cnn.progress import progress_bar
from mnist_cnn.train import available_cores, pick_device

DEFAULT_SAMPLERS = ("tpe", "random", "cmaes", "gp")
DEFAULT_PRUNERS = ("median", "hyperband", "none")
POLL_SECONDS = 0.5
# What a sampler is told of a draw outside a space's designed points: chance accuracy on ten
# classes, what a collapsed network scores (_optimize_designed).
OFF_POINT_VALUE = 0.1
# After this many times the draws that random sampling would need, a study whose sampler settled
# off the design draws its remaining trials among the designed points at random (_optimize_designed).
OFF_POINT_DRAW_FACTOR = 20
# The "compare" attr's table fields, refreshed in every study after a run.
COVERAGE_KEYS = ("best_in_table", "best_in_table_seeds", "best_config_in_table", "table_configs",
                 "grid_configs")
# The "compare" attr's fields on the cross-fitted baseline (Baseline), refreshed likewise.
BASELINE_KEYS = ("baseline_config", "baseline_replay_mean", "baseline_replay_seeds",
                 "baseline_reserved_mean", "baseline_reserved_seeds")
# The "compare" attr's fields on the study's pick (picked_config).
PICKED_KEYS = ("picked_trial", "picked_config_mean", "picked_config_seeds",
               "picked_config_reserved_mean", "picked_config_reserved_seeds")


@dataclass(frozen=True)
class CompareSettings:
    """One `mnist-bench compare`: the fidelity, data and storage come from `base` (its sampler,
    pruner, trials and study name are unused); `workers` None means one per available core."""

    base: SearchSettings = field(default_factory=SearchSettings)
    samplers: tuple[str, ...] = DEFAULT_SAMPLERS
    pruners: tuple[str, ...] = DEFAULT_PRUNERS
    seeds: int = 10
    trials: int = 30
    group: str | None = None
    workers: int | None = None
    # Training seeds no query draws, the picks scored on them; None: the highest seed every
    # config of the table has, when it has two or more (resolve_reserved).
    reserved_seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for kind, names, allowed in (("sampler", self.samplers, SAMPLERS),
                                     ("pruner", self.pruners, PRUNERS)):
            if not names:
                raise ValueError(f"no {kind}s given: use one or more of {', '.join(allowed)}")
            for name in names:
                if name not in allowed:
                    raise ValueError(f"unknown {kind} {name!r}: use one of {', '.join(allowed)}")
            if len(set(names)) != len(names):
                raise ValueError(f"a {kind} is listed twice in {','.join(names)}")
        for name in ("seeds", "trials"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.group is not None:
            layout.check_name(self.group, "group")
        if not self.base.replay:
            raise ValueError("compare answers trials from the curve table: drop --no-replay "
                             "(`search --no-replay` trains every trial)")
        if self.reserved_seeds is not None:
            if len(set(self.reserved_seeds)) != len(self.reserved_seeds):
                raise ValueError(f"a reserved seed is listed twice in "
                                 f"{','.join(map(str, self.reserved_seeds))}")
            if self.base.seed in self.reserved_seeds:
                raise ValueError(_RESERVED_TRAINING_SEED.format(seed=self.base.seed))

    def group_for(self, space: SearchSpace) -> str:
        return self.group or f"compare-{space.name}"

    def worker_count(self) -> int:
        return self.workers or available_cores()


@dataclass(frozen=True)
class StudyJob:
    """One study of the matrix."""

    name: str
    sampler: str
    pruner: str
    seed: int  # seeds the sampler


@dataclass(frozen=True)
class TableCoverage:
    """What the curve table holds of the space's valid grid configs at this fidelity."""

    grid_configs: int | None  # None: the space has no finite grid
    table_configs: int | None
    best_in_table: float | None  # the highest mean over seeds of a config's best accuracy
    best_in_table_seeds: int | None  # how many seeds that mean is over
    best_config_in_table: dict[str, Any] | None
    # each grid config in the table: its params and each recorded seed's best accuracy
    values: dict[MeasurementKeys, tuple[dict[str, Any], dict[int, float]]] = field(
        default_factory=dict)

    @property
    def seed_values(self) -> dict[MeasurementKeys, dict[int, float]]:
        """Each grid config in the table: its seeds' best accuracies."""
        return {key: seeds for key, (_, seeds) in self.values.items()}

    def baseline_fields(self, reserved: tuple[int, ...]) -> dict[str, Any]:
        """The "compare" attr's BASELINE_KEYS: the cross-fitted baseline on these reserved seeds
        (bench.benchmark.reserved), None values when there is none."""
        found = cross_fitted_baseline(self.seed_values, reserved)
        if found is None:
            return dict.fromkeys(BASELINE_KEYS)
        return {"baseline_config": self.values[found.key][0],
                "baseline_replay_mean": found.replay_mean,
                "baseline_replay_seeds": found.replay_seeds,
                "baseline_reserved_mean": found.reserved_mean,
                "baseline_reserved_seeds": found.reserved_seeds}

    @property
    def missing(self) -> int:
        return (self.grid_configs or 0) - (self.table_configs or 0)

    def note(self, space: SearchSpace, table: Path) -> str:
        if self.grid_configs is None:
            return (f"{space.name} has no finite grid: best_in_table is null (no regret), and "
                    f"configs missing from {table} are trained and added")
        if not self.missing:
            return (f"curve table {table} has all {self.grid_configs} valid grid configs of "
                    f"{space.name} at this fidelity: every trial is replayed")
        return (f"warning: curve table {table} lacks {self.missing} of the {self.grid_configs} "
                f"valid grid configs of {space.name} at this fidelity: those are trained when "
                f"sampled (slow) and added; `mnist-bench grid` with the same options fills it")


_RESERVED_TRAINING_SEED = ("seed {seed} is reserved but is also --seed, the seed configs missing "
                           "from the table are trained with: reserve other seeds, or pass "
                           "another --seed")


@dataclass(frozen=True)
class CompareOutcome:
    group: str
    storage_url: str
    studies: int  # in the matrix
    run: int  # run now (including replaced incomplete ones)
    skipped: int  # already complete in the storage
    replaced: int  # incomplete ones deleted and run again
    trials: int  # counted trials of the studies run now
    replayed: int
    trained: int
    invalid: int
    coverage: TableCoverage
    table_note: str
    seconds: float
    reserved_seeds: tuple[int, ...] = ()
    signal: int | None = None
    off_point_draws: int = 0  # draws outside the space's designed points: no trials

    @property
    def exit_code(self) -> int:
        return exit_code(self.signal)

    def summary(self) -> str:
        stopped = (f"; stopped by {signal.Signals(self.signal).name}, "
                   f"{self.studies - self.skipped - self.run} studies left"
                   if self.signal else "")
        replaced = f" ({self.replaced} incomplete ones replaced)" if self.replaced else ""
        reserved = (f"picks scored on reserved seed(s) {', '.join(map(str, self.reserved_seeds))}, "
                    "which no query drew" if self.reserved_seeds else
                    "no seed reserved (the table has one seed per config), so no regret")
        off_points = (f" ({self.off_point_draws} more draws fell outside the space's designed "
                      "points: not trials, nothing trained)" if self.off_point_draws else "")
        return (f"{self.group}: {self.run} of {self.studies} studies run{replaced}, "
                f"{self.skipped} already complete; {self.trials} trials: {self.replayed} "
                f"replayed from the curve table, {self.trained} trained, {self.invalid} invalid "
                f"configs{off_points}; {self.seconds:.0f} s{stopped}. {self.table_note}; "
                f"{reserved}. Storage {self.storage_url}")


def run_compare(settings: CompareSettings) -> CompareOutcome:
    """Run every study of the matrix that the storage lacks; finished studies are kept on Ctrl-C."""
    started = time.perf_counter()
    quiet_optuna()
    base = settings.base
    space = load_space(base.space)
    if "grid" in settings.samplers:
        space.grid()  # a space with no finite grid fails now, in one line
    group = settings.group_for(space)
    # bad data fails before anything is written
    split = load_split(base.data_dir, base.validation_size, base.data_seed, base.train_size)
    check_curve_table(base.curve_table_path)  # so do a damaged table
    # and a damaged journal or storage; a group not made yet is made once the settings pass
    opened = group_storage(base, group) if _group_made(base, group) else None
    table = CurveTable(base.curve_table_path)  # an unusable table path fails now
    for merged in merge_shipped(base.results_dir, table):
        tqdm.write(merged)
    coverage = table_coverage(space, base, split, table)
    reserved = resolve_reserved(settings.reserved_seeds, coverage.seed_values)
    if base.seed in reserved:
        raise ValueError(_RESERVED_TRAINING_SEED.format(seed=base.seed))
    note = coverage.note(space, table.path)
    storage, where = opened or group_storage(base, group)
    jobs = [StudyJob(f"{group}-{sampler}-{pruner}-seed{seed}", sampler, pruner, seed)
            for sampler in settings.samplers for pruner in settings.pruners
            for seed in range(settings.seeds)]
    complete, incomplete = _existing(storage, jobs, settings, space, reserved)
    for name in incomplete:
        optuna.delete_study(study_name=name, storage=storage)
    pending = [job for job in jobs if job.name not in complete]
    tqdm.write(note)
    writer = _StudyWriter(settings, space, group, coverage, storage, table, reserved)
    received = (_run_jobs(settings, split, pending, len(jobs), writer, reserved) if pending
                else None)
    # Trained configs (and seeds added since) changed the table: keep the best config, the table
    # counts and each study's picked-config mean current in every study.
    final = table_coverage(space, base, split, table)
    _refresh_coverage(storage, [job.name for job in jobs], final, table, reserved)
    return CompareOutcome(group=group, storage_url=where, studies=len(jobs),
                          run=writer.studies, skipped=len(jobs) - len(pending),
                          replaced=len(incomplete), trials=writer.trials,
                          replayed=writer.replayed, trained=writer.trained,
                          invalid=writer.invalid, coverage=final, table_note=note,
                          seconds=time.perf_counter() - started, reserved_seeds=reserved,
                          signal=received, off_point_draws=writer.off_points)


def _group_made(base: SearchSettings, group: str) -> bool:
    """Whether the group's storage exists already (--storage is always opened as given)."""
    return (base.storage is not None or layout.study_db(base.results_dir, group).is_file()
            or layout.study_journal(base.results_dir, group).is_file())


def group_storage(base: SearchSettings, group: str) -> tuple[optuna.storages.BaseStorage, str]:
    """The storage of a compare group, and where it is (for messages): --storage when given, else
    results/<group>/journal.log (a group made before journals keeps its study.db)."""
    if base.storage is not None:
        url = base.storage_url(group)
        return open_storage(url, base.heartbeat_interval, base.grace_period), hidden_url(url)
    path = layout.study_file(base.results_dir, group)
    if path == layout.study_db(base.results_dir, group):
        if path.is_file():
            url = layout.sqlite_url(base.results_dir, group)
            return open_storage(url, base.heartbeat_interval, base.grace_period), url
        path = layout.study_journal(base.results_dir, group)
    return open_journal(path), str(path)


def table_coverage(space: SearchSpace, base: SearchSettings, split: TrainValidationSplit,
                   table: CurveTable) -> TableCoverage:
    """How many valid grid configs have a complete curve at this fidelity, and the best of them:
    the config with the highest mean over its recorded seeds (a lucky seed does not make it)."""
    try:
        valid = valid_grid(space, base)
    except SpaceError:
        return TableCoverage(None, None, None, None, None)
    stored = table.load()
    device_kind = pick_device(base.device).type
    found = 0
    best: tuple[float, int, dict] | None = None
    values: dict[MeasurementKeys, tuple[dict[str, Any], dict[int, float]]] = {}
    for params, config, train_settings in valid:
        fidelity = Fidelity.of(train_settings, len(split.train), len(split.validation),
                               base.data_dir, device_kind, split.seed)
        seeds = stored.get(measurement_keys(config, fidelity))
        if not seeds:
            continue
        found += 1
        values[measurement_keys(config, fidelity)] = (
            params, {seed: curve.best_validation_accuracy for seed, curve in seeds.items()})
        mean = seed_mean(seeds)
        if best is None or mean > best[0]:
            best = (mean, len(seeds), params)
    if best is None:
        return TableCoverage(len(valid), found, None, None, None)
    return TableCoverage(len(valid), found, *best, values=values)


def seed_mean(seeds: dict[int, StoredCurve]) -> float:
    """A config's value in the benchmark: the arithmetic mean (numpy.mean) over its recorded
    seeds of each seed's best validation accuracy, as NAS-Bench-201 reports a config."""
    return float(np.mean([curve.best_validation_accuracy for curve in seeds.values()]))


def picked_config(trials: list[FrozenTrial], table: CurveTable,
                  reserved: tuple[int, ...]) -> dict[str, Any]:
    """The config a study picked (its best completed trial; the earliest on ties), scored on the
    reserved seeds, which no query drew: the "compare" attr's picked_* fields.

    `picked_config_reserved_mean` is its mean over the reserved seeds (reserved_value), the value
    its regret is measured on; None where the table lacks one of them for it (a config trained
    during the run has the search's seed alone). `picked_config_mean` is the mean over all its
    recorded seeds, for context. None values where the study completed no trial or the table
    has no complete curve of the config. `trials` may be the picked trial alone.
    """
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return dict.fromkeys(PICKED_KEYS)
    best = max(done, key=lambda t: (t.value, -t.number))
    seeds = {}
    fidelity = best.user_attrs.get(schema.ATTR_FIDELITY)
    if fidelity is not None:
        seeds = table.seeds(best.user_attrs[schema.ATTR_CONFIG], Fidelity.from_record(fidelity))
    values = {seed: curve.best_validation_accuracy for seed, curve in seeds.items()}
    scored = reserved_value(values, reserved)
    return {"picked_trial": best.number,
            "picked_config_mean": seed_mean(seeds) if seeds else None,
            "picked_config_seeds": len(seeds) if seeds else None,
            "picked_config_reserved_mean": scored,
            "picked_config_reserved_seeds": len(reserved) if scored is not None else 0}


def _compare_attr(settings: CompareSettings, space: SearchSpace, group: str, job: StudyJob,
                  coverage: TableCoverage, reserved: tuple[int, ...]) -> dict[str, Any]:
    return {"group": group, "space": space.name, "sampler": job.sampler, "pruner": job.pruner,
            "seed": job.seed, "trials": settings.trials,
            "curve_table": str(settings.base.curve_table_path), "reserved_seeds": list(reserved),
            **_table_fields(coverage, reserved)}


def _table_fields(coverage: TableCoverage, reserved: tuple[int, ...]) -> dict[str, Any]:
    """The "compare" attr's fields that follow the table: its cover and the baseline."""
    return {**{key: getattr(coverage, key) for key in COVERAGE_KEYS},
            **coverage.baseline_fields(reserved)}


def _study_attrs(settings: CompareSettings, space: SearchSpace, group: str, job: StudyJob,
                 coverage: TableCoverage, reserved: tuple[int, ...],
                 picked: dict[str, Any]) -> dict[str, Any]:
    search = replace(settings.base, sampler=job.sampler, pruner=job.pruner,
                     trials=settings.trials, study_name=job.name)
    return {schema.STUDY_ATTR_SETTINGS: search.record(), schema.STUDY_ATTR_SPACE: space.describe(),
            schema.STUDY_ATTR_COMPARE: {
                **_compare_attr(settings, space, group, job, coverage, reserved), **picked}}


def _existing(storage, jobs: list[StudyJob], settings: CompareSettings, space: SearchSpace,
              reserved: tuple[int, ...]) -> tuple[set[str], set[str]]:
    """Names of this matrix's studies already complete in the storage, and of incomplete ones.

    A study's "compare" attr is written after its trials, so a study that has it is complete. A
    complete study run with other settings is refused, as search does; so is one written before
    reserved seeds (its queries drew every seed, so none is unseen).
    """
    wanted = {job.name: job for job in jobs}
    complete, incomplete = set(), set()
    for study in storage.get_all_studies():
        if study.study_name not in wanted:
            continue
        attr = study.user_attrs.get(schema.STUDY_ATTR_COMPARE)
        if attr is None:
            incomplete.add(study.study_name)
            continue
        job = wanted[study.study_name]
        check_resumable(study.study_name, study.user_attrs.get(schema.STUDY_ATTR_SETTINGS, {}),
                        study.user_attrs.get(schema.STUDY_ATTR_SPACE),
                        replace(settings.base, sampler=job.sampler, pruner=job.pruner), space,
                        rename_hint="--group")
        if attr.get("trials") != settings.trials:
            raise ValueError(f"study {study.study_name!r} was run with trials="
                             f"{attr.get('trials')!r}, this command asks trials={settings.trials!r}: "
                             f"use the same settings to resume, or a new --group")
        if "reserved_seeds" not in attr:
            raise ValueError(f"study {study.study_name!r} was written by a compare before "
                             "reserved seeds (its queries drew every seed): its report keeps "
                             "the old scoring; run this command with a new --group")
        if tuple(attr["reserved_seeds"]) != reserved:
            shown = ",".join(map(str, attr["reserved_seeds"])) or "none"
            raise ValueError(f"study {study.study_name!r} was run with reserved seeds {shown}, "
                             f"this command reserves {','.join(map(str, reserved)) or 'none'}: "
                             f"pass --reserved-seeds {shown} to resume, or use a new --group")
        complete.add(study.study_name)
    return complete, incomplete


def _refresh_coverage(storage, names: list[str], coverage: TableCoverage, table: CurveTable,
                      reserved: tuple[int, ...]) -> None:
    """Bring the table's fields and each pick's means up to date (seeds or configs added)."""
    for study in storage.get_all_studies():
        attr = study.user_attrs.get(schema.STUDY_ATTR_COMPARE)
        if study.study_name not in names or attr is None:
            continue
        study_id = storage.get_study_id_from_name(study.study_name)
        number = attr.get("picked_trial")
        picked = ([] if number is None else
                  [storage.get_trial(storage.get_trial_id_from_study_id_trial_number(
                      study_id, number))])
        current = {**attr, **_table_fields(coverage, reserved),
                   **picked_config(picked, table, reserved)}
        if current != attr:
            storage.set_study_user_attr(study_id, schema.STUDY_ATTR_COMPARE, current)


def _run_jobs(settings: CompareSettings, split: TrainValidationSplit, pending: list[StudyJob],
              total: int, writer: "_StudyWriter", reserved: tuple[int, ...]) -> int | None:
    """Run the pending studies in worker processes, writing each as it finishes; returns the
    signal that stopped the run, if any."""
    workers = min(settings.worker_count(), len(pending))
    threads = max(1, available_cores() // workers)
    context = multiprocessing.get_context("spawn")
    started = context.SimpleQueue()  # each worker's pid, so that a stop can end it
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                               initargs=(settings, split, threads, started, reserved))
    bar = progress_bar(total=total, initial=total - len(pending), desc=writer.group,
                       unit="study")
    with SignalGuard() as stop:
        futures = {pool.submit(_run_study, job): job for job in pending}
        try:
            while futures and stop.received is None:
                done, _ = wait(futures, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    writer.write(futures.pop(future), future)
                    bar.update()
                    bar.set_postfix_str(f"replayed={writer.replayed} trained={writer.trained}")
        finally:
            _stop_workers(pool, started)
            bar.close()
    return stop.received


@dataclass
class _StudyWriter:
    """Writes finished studies to the group's storage and tallies their trials."""

    settings: CompareSettings
    space: SearchSpace
    group: str
    coverage: TableCoverage
    storage: optuna.storages.BaseStorage
    table: CurveTable
    reserved: tuple[int, ...]
    studies: int = 0
    trials: int = 0
    replayed: int = 0
    trained: int = 0
    invalid: int = 0
    off_points: int = 0  # draws outside the space's designed points (_optimize_designed)

    def write(self, job: StudyJob, future: Future) -> None:
        try:
            trials, off_points = future.result()
        except Exception as error:
            raise RuntimeError(f"study {job.name} failed: {type(error).__name__}: "
                               f"{error}") from error
        attrs = _study_attrs(self.settings, self.space, self.group, job, self.coverage,
                             self.reserved, {**picked_config(trials, self.table, self.reserved),
                                             "off_point_draws": off_points})
        _write_study(self.storage, job.name, attrs, trials)
        self.studies += 1
        self.trials += len(trials)
        self.off_points += off_points
        for trial in trials:
            if schema.ATTR_INVALID_REASON in trial.user_attrs:
                self.invalid += 1
            elif trial.user_attrs.get(schema.ATTR_REPLAYED):
                self.replayed += 1
            elif trial.user_attrs.get(schema.ATTR_LEARNING_CURVE):
                self.trained += 1


def _stop_workers(pool: ProcessPoolExecutor, started: Any) -> None:
    """Drop queued studies and end running ones now; their trials were never written."""
    pool.shutdown(wait=False, cancel_futures=True)
    while not started.empty():
        try:
            os.kill(started.get(), signal.SIGTERM)
        except ProcessLookupError:
            pass  # finished already
    pool.shutdown(wait=True)


# State of a worker process, set once by _start_worker: the split and table are loaded once.
_WORKER: dict[str, Any] = {}


def _start_worker(settings: CompareSettings, split: TrainValidationSplit, threads: int,
                  started: Any, reserved: tuple[int, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (and kills us)
    started.put(os.getpid())
    torch.set_num_threads(threads)
    quiet_optuna()
    base = settings.base
    _WORKER.update(settings=settings, space=load_space(base.space), split=split,
                   curves=CurveTable(base.curve_table_path), device=pick_device(base.device),
                   reserved=frozenset(reserved))


def _run_study(job: StudyJob) -> tuple[list[FrozenTrial], int]:
    """One whole study on in-memory storage: its counted trials, as they go to the storage, and
    how many draws fell outside the space's designed points (_optimize_designed)."""
    settings: CompareSettings = _WORKER["settings"]
    space: SearchSpace = _WORKER["space"]
    base = settings.base
    steps = base.epochs * base.evaluations_per_epoch
    study = optuna.create_study(study_name=job.name, direction="maximize",
                                sampler=make_sampler(job.sampler, space, job.seed),
                                pruner=make_pruner(job.pruner, steps))
    # A benchmark keeps curves, not weights: no artifact store.
    objective = Objective(space=space, split=_WORKER["split"], device=_WORKER["device"],
                          plan=base.plan(), study_name=job.name, curves=_WORKER["curves"],
                          replay=True, data_dir=base.data_dir,
                          reserved_seeds=_WORKER["reserved"])
    if space.points is None:
        study.optimize(objective, n_trials=settings.trials)
    else:
        _optimize_designed(study, objective, space, settings.trials)
    drawn = study.get_trials(deepcopy=False)
    trials = [t for t in drawn if space.designed(t.params)]
    counted = [t for t in trials if t.state in COUNTED_STATES]
    expected = settings.trials
    if job.sampler == "grid":  # GridSampler stops the study once every point was visited
        expected = min(expected, len(space.points or space.grid_points()))
    if len(counted) != len(trials) or len(counted) != expected:
        raise RuntimeError(f"{len(counted)} of {len(trials)} trials finished, {expected} expected")
    return _renumbered(counted), len(drawn) - len(trials)


def _optimize_designed(study: optuna.Study, objective: Objective, space: SearchSpace,
                       trials: int) -> None:
    """Run `study` until `trials` of its draws are designed points of `space`.

    A draw outside the designed points is no network of the benchmark (a designed slice, such as
    faq-tutorial's 40 of 270, is a measuring plan, not a constraint a search meets), so it is not
    a trial: it costs nothing and is not written. The sampler is told it scored OFF_POINT_VALUE,
    so that every sampler learns to leave it (GP and CMA-ES ignore pruned trials, and GP then
    proposes the same off point again and again). A sampler can still settle off the design (CMA-ES
    did on faq-tutorial); past OFF_POINT_DRAW_FACTOR times the draws random sampling would need,
    the study's remaining trials are designed points drawn at random, marked ATTR_DRAWN_AT_RANDOM.
    """
    def told(trial: optuna.Trial) -> float:
        try:
            return objective(trial)
        except optuna.TrialPruned:
            if space.designed(trial.params):
                raise
            return OFF_POINT_VALUE

    share = len(space.grid_points()) / len(space.points)
    limit = int(OFF_POINT_DRAW_FACTOR * trials * share)
    drawn = designed = 0
    grid = study.sampler if isinstance(study.sampler, optuna.samplers.GridSampler) else None
    rng = np.random.default_rng(int(hashlib.sha256(study.study_name.encode()).hexdigest()[:8], 16))
    while designed < trials and not (grid is not None and grid.is_exhausted(study)):
        if drawn >= limit:
            # The sampler has settled off the design (CMA-ES can): the rest of the study's trials
            # are designed points drawn at random, through Optuna's queue, each marked so.
            point = space.points[int(rng.integers(len(space.points)))]
            study.enqueue_trial(point, user_attrs={schema.ATTR_DRAWN_AT_RANDOM: (
                f"{limit} draws gave {designed} of {trials} designed points")})
        study.optimize(told, n_trials=1)
        drawn += 1
        designed += space.designed(study.get_trials(deepcopy=False)[-1].params)


def _renumbered(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Copies numbered 0, 1, ... as the group's storage numbers them when they are added (so a
    pick's number names its stored trial)."""
    copies = [copy.copy(trial) for trial in trials]
    for number, trial in enumerate(copies):
        trial.number = number
    return copies


def _write_study(storage: optuna.storages.BaseStorage, name: str, user_attrs: dict[str, Any],
                 trials: list[FrozenTrial]) -> None:
    """Create the study with its trials through Optuna's public API, the "compare" attr last.

    A study that has its "compare" attr is therefore complete (a rerun skips it), and one
    without was cut off while being written (a rerun replaces it). `add_trials` costs 30-80 ms
    a trial in SQLite and about 1.5 ms in a journal file (docs/measurements.md), which is why a
    group's default storage is a journal.
    """
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for key, value in user_attrs.items():
        if key != schema.STUDY_ATTR_COMPARE:
            study.set_user_attr(key, value)
    study.add_trials(trials)
    study.set_user_attr(schema.STUDY_ATTR_COMPARE, user_attrs[schema.STUDY_ATTR_COMPARE])
