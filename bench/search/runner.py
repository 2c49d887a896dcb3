"""Run a search: trials up to the study's total, in one process or K, safe to interrupt.

After every finished trial, trials.csv is rewritten and superseded weights are deleted, under a
file lock so concurrent workers never interleave. SIGINT/SIGTERM during a trial ends it as FAIL
with an `end_reason`; the search then writes its files and exits with 128 + the signal number.

A worker killed outright (SIGKILL, out of memory) leaves its trial RUNNING: every worker and every
rerun fails it (at once on the same machine, after its heartbeat's grace period elsewhere), retries
it, and waits for the last running trials rather than stop short of the trial limit.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState
from tqdm import tqdm

from bench.store import layout, schema
from bench.store.artifacts import open_artifact_store, remove_superseded_weights
from bench.store.curves import CurveTable
from bench.store.damage import check_curve_table
from bench.search.objective import Objective
from bench.search.interrupt import SearchInterrupted, SignalGuard, exit_code
from bench.search.settings import SearchSettings
from bench.store.storage import hidden_url
from bench.search.spaces import SearchSpace, load_space
from bench.search.study import (COUNTED_STATES, WorkerProcess, claimed_trials, counted_trials,
                         fail_dead_trials, open_study, quiet_optuna, recovered_trials,
                         search_storage)
from mnist_cnn.data import TrainValidationSplit, load_split
from mnist_cnn.progress import progress_bar
from mnist_cnn.train import available_cores, pick_device, use_available_cores

POLL_SECONDS = 1.0


class _TrialLimitReached(Exception):
    """Another worker claimed the last place under the trial limit between our check and our
    trial."""


@dataclass
class SearchOutcome:
    study_name: str
    storage_url: str
    finished: int
    pruned: int
    invalid: int
    replayed: int
    best_value: float | None
    best_trial: int | None
    seconds: float
    signal: int | None = None
    recovered: int = 0  # trials of dead workers failed and retried or replaced by this command
    finished_before: int = 0  # trials the study had finished before this command
    total: int = 0  # the study's total asked for (--trials)

    @property
    def exit_code(self) -> int:
        return exit_code(self.signal)

    def summary(self) -> str:
        best = (f"best validation accuracy {self.best_value:.2%} (trial {self.best_trial})"
                if self.best_value is not None else "no completed trial yet")
        stopped = f"; stopped by {signal.Signals(self.signal).name}" if self.signal else ""
        replayed = f", {self.replayed} replayed from the curve table" if self.replayed else ""
        recovered = (f", {self.recovered} trial{'s' if self.recovered != 1 else ''} of a dead "
                     f"worker recovered" if self.recovered else "")
        return (f"{self._before()}study {self.study_name}: {self.finished} trials finished "
                f"({self.pruned} pruned, {self.invalid} of them invalid configs{replayed}), {best}, "
                f"{self.seconds:.0f} s{recovered}{stopped}")

    def _before(self) -> str:
        """What the study had already: --trials is its total, not a number to add."""
        if not self.finished_before:
            return ""
        if self.finished_before >= self.total:
            return (f"note: --trials {self.total} on a study with {self.finished_before} finished "
                    "trials ran none: --trials is the study's total, raise it to add trials\n")
        return (f"note: the study had {self.finished_before} finished trials; this run added "
                f"{self.finished - self.finished_before} towards its total of {self.total}\n")


def run_search(settings: SearchSettings) -> SearchOutcome:
    """Open (or resume) the study and run trials until `settings.trials` have finished."""
    quiet_optuna()
    space = load_space(settings.space)
    # Bad input fails here, before the study is made or any worker or training starts.
    pick_device(settings.device)
    split = load_split(settings.data_dir, settings.validation_size, settings.data_seed,
                       settings.train_size)
    check_curve_table(settings.curve_table_path)  # damaged: refused before the study is made
    storage = search_storage(settings, space)
    open_artifact_store(settings.artifact_location, create=False)  # a bad location fails here
    study = open_study(settings, space, storage=storage)  # once here, before any worker starts
    # made once a resume with other settings is refused
    artifacts = open_artifact_store(settings.artifact_location)
    CurveTable(settings.curve_table_path)
    finished_before = len(counted_trials(study))
    started = time.perf_counter()
    started_at = datetime.now()  # the clock Optuna's storage stamps trials with
    if settings.workers == 1:
        use_available_cores()
        signal_received = _run_worker_here(settings, space, split, worker_index=0, progress=True)
    else:
        del split  # each worker process loads its own
        signal_received = _run_worker_processes(settings, study)
    write_study_files(study, settings, artifacts)
    return replace(_outcome(study, settings, time.perf_counter() - started, signal_received,
                            started_at), finished_before=finished_before, total=settings.trials)


def _run_worker_here(settings: SearchSettings, space: SearchSpace, split: TrainValidationSplit,
                     worker_index: int, progress: bool) -> int | None:
    """One worker's loop in this process; returns the signal that stopped it, if any."""
    storage = search_storage(settings, space)
    study = open_study(settings, space, worker_index, storage)
    name = study.study_name
    artifacts = open_artifact_store(settings.artifact_location)
    objective = Objective(space=space, split=split,
                          device=pick_device(settings.device), plan=settings.plan(),
                          study_name=name, curves=CurveTable(settings.curve_table_path),
                          replay=settings.replay,
                          replay_other_seeds=settings.replay_other_seeds,
                          data_dir=settings.data_dir,
                          artifacts=artifacts)
    bar = _progress_bar(study, settings) if progress else None
    started = time.monotonic()
    worker = WorkerProcess.this()  # where the trial runs (and its weights are kept)
    with SignalGuard() as guard:
        objective.storage_section = guard.storage_section

        def claimed_objective(trial: optuna.Trial) -> float:
            worker.record(trial)  # first: from now on a death here is seen at once
            _claim_place(study, trial, settings.trials)
            guard.in_trial = True
            try:
                if guard.received is not None:  # a signal came between trials
                    raise SearchInterrupted(guard.received)
                return objective(trial)
            except KeyboardInterrupt as interrupt:
                trial.set_user_attr(schema.ATTR_END_REASON, str(interrupt) or "interrupted")
                raise
            finally:
                guard.in_trial = False

        def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            write_study_files(study, settings, artifacts)
            if bar is not None:
                _show(bar, study)

        try:
            while _wait_for_place(study, storage, settings, started, guard,
                                  announce=progress or worker_index == 0):
                study.optimize(claimed_objective, n_trials=1, catch=(_TrialLimitReached,),
                               callbacks=[after_trial])
        except SearchInterrupted:
            pass
        finally:
            write_study_files(study, settings, artifacts)
            if bar is not None:
                _show(bar, study)
                bar.close()
    return guard.received


def _wait_for_place(study: optuna.Study, storage: optuna.storages.RDBStorage,
                    settings: SearchSettings, started: float, guard: SignalGuard,
                    announce: bool) -> bool:
    """Whether to start another trial: True once the trial limit leaves a free place. While
    running trials hold the last places, waits: they finish, or their worker is found dead and
    they are failed and retried here (a queued retry takes a free place like a new trial)."""
    announced: set[int] = set()
    while guard.received is None:
        fail_dead_trials(study, storage)  # a dead worker on this machine: at once
        optuna.storages.fail_stale_trials(study)  # elsewhere: once its heartbeat is stale
        if settings.timeout is not None and time.monotonic() - started >= settings.timeout:
            return False
        trials = study.get_trials(deepcopy=False)
        counted = sum(1 for t in trials if t.state in COUNTED_STATES)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        waiting = any(t.state == TrialState.WAITING for t in trials)
        sampler = study.sampler
        if counted >= settings.trials or (isinstance(sampler, optuna.samplers.GridSampler)
                                          and not waiting and sampler.is_exhausted(study)):
            return False
        if counted + len(running) < settings.trials:
            return True
        if announce:
            _announce_heartbeat_waits(running, settings, announced)
        time.sleep(POLL_SECONDS)
    return False


def _announce_heartbeat_waits(running: list[optuna.trial.FrozenTrial], settings: SearchSettings,
                              announced: set[int]) -> None:
    """One line per running trial whose worker this machine cannot see: only its heartbeat tells."""
    for trial in running:
        worker = WorkerProcess.of(trial)
        if trial.number in announced or (worker is not None and worker.is_local()):
            continue
        announced.add(trial.number)
        where = f"worker {worker.name}" if worker else "a worker that recorded no name"
        tqdm.write(f"waiting for trial {trial.number} on {where}: it finishes, or its heartbeat "
                   f"expires within {settings.grace_period} s if that worker is gone",
                   file=sys.stderr)


def _claim_place(study: optuna.Study, trial: optuna.Trial, total: int) -> None:
    """Trial numbers are handed out in order under a lock, so the trials numbered below ours
    decide exactly whether the trial limit still leaves a place for ours (a queued retry
    numbered below ours is taken first by whoever asks next, so it holds its place)."""
    earlier = [t for t in claimed_trials(study) if t.number < trial.number]
    if len(earlier) >= total:
        # the stored text keeps its words ("budget": the trial limit), as older trials have it
        trial.set_user_attr(schema.ATTR_END_REASON, "not run: the budget was already claimed by "
                                                    "other workers")
        raise _TrialLimitReached(f"trial {trial.number} is beyond the study's {total} trials")


def _worker_main(settings: SearchSettings, worker_index: int, threads: int) -> None:
    """Entry point of a spawned worker process."""
    torch.set_num_threads(threads)
    quiet_optuna()
    split = load_split(settings.data_dir, settings.validation_size, settings.data_seed,
                       settings.train_size)
    received = _run_worker_here(settings, load_space(settings.space), split, worker_index,
                                progress=False)
    sys.exit(128 + received if received else 0)


def _run_worker_processes(settings: SearchSettings, study: optuna.Study) -> int | None:
    """K spawned workers on one study; this process shows progress and forwards signals."""
    threads = max(1, available_cores() // settings.workers)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker_main, args=(settings, index, threads),
                               name=f"search-worker-{index}")
               for index in range(settings.workers)]
    received: list[int] = []
    killed: list[multiprocessing.Process] = []

    def forward(signum: int, frame) -> None:
        if not received:
            received.append(signum)
        for worker in workers:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    bar = _progress_bar(study, settings)
    try:
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers):
            time.sleep(POLL_SECONDS)
            _report_killed(workers, killed)
            _show(bar, study)
    finally:
        for worker in workers:
            worker.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _show(bar, study)
        bar.close()
    _report_killed(workers, killed)
    failed = [w for w in workers if w.exitcode is not None and 0 < w.exitcode < 128]
    if failed and not received:
        raise RuntimeError(f"{failed[0].name} failed with exit code {failed[0].exitcode}; "
                           f"see its error above")
    if len(killed) == len(workers) and not received:
        raise RuntimeError(f"all {len(workers)} workers were killed; rerun the same command to "
                           f"recover their trials and finish")
    return received[0] if received else None


def _report_killed(workers: list[multiprocessing.Process],
                   killed: list[multiprocessing.Process]) -> None:
    """A worker killed by a signal (SIGKILL, out of memory) is reported once; the live ones
    fail its trial at once (same machine) and take over its place under the trial limit."""
    for worker in workers:
        if worker.exitcode is not None and worker.exitcode < 0 and worker not in killed:
            killed.append(worker)
            tqdm.write(f"{worker.name} was killed by {signal.Signals(-worker.exitcode).name}; "
                       f"the other workers recover its trial", file=sys.stderr)


def _progress_bar(study: optuna.Study, settings: SearchSettings) -> tqdm:
    # initial: a resumed study's earlier trials are shown as done, not counted in the rate
    bar = progress_bar(total=settings.trials, initial=len(counted_trials(study)),
                       desc=study.study_name, unit="trial")
    _show(bar, study)
    return bar


def _show(bar: tqdm, study: optuna.Study) -> None:
    """Trials done, pruned, replayed and the best validation accuracy so far (tqdm adds elapsed)."""
    trials = counted_trials(study)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = len(trials) - len(completed)
    replayed = sum(1 for t in trials if t.user_attrs.get(schema.ATTR_REPLAYED))
    bar.n = min(len(trials), bar.total)
    best = max((t.value for t in completed), default=None)
    bar.set_postfix_str(f"pruned={pruned} replayed={replayed} best_val_acc="
                        + (f"{best:.4f}" if best is not None else "-"))


@contextmanager
def _study_lock(study_dir: Path):
    """One writer at a time for trials.csv and weight removals (workers of one machine)."""
    study_dir.mkdir(parents=True, exist_ok=True)
    with open(study_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_study_files(study: optuna.Study, settings: SearchSettings, artifacts) -> None:
    """Rewrite trials.csv atomically and keep only the best trial's weights in the artifact store."""
    name = study.study_name
    csv_path = layout.trials_csv(settings.results_dir, name)
    with _study_lock(layout.study_dir(settings.results_dir, name)):
        frame = study.trials_dataframe()
        partial = csv_path.with_suffix(".csv.partial")
        frame.to_csv(partial, index=False)
        os.replace(partial, csv_path)
        remove_superseded_weights(study, artifacts)


def _outcome(study: optuna.Study, settings: SearchSettings, seconds: float,
             signal_received: int | None, started_at: datetime) -> SearchOutcome:
    trials = counted_trials(study)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    invalid = [t for t in pruned if schema.ATTR_INVALID_REASON in t.user_attrs]
    try:
        best_value, best_trial = study.best_value, study.best_trial.number
    except ValueError:
        best_value = best_trial = None
    return SearchOutcome(study_name=study.study_name,
                         storage_url=hidden_url(settings.storage_url(study.study_name)),
                         finished=len(trials), pruned=len(pruned), invalid=len(invalid),
                         replayed=sum(1 for t in trials if t.user_attrs.get(schema.ATTR_REPLAYED)),
                         best_value=best_value, best_trial=best_trial, seconds=seconds,
                         signal=signal_received,
                         recovered=len(recovered_trials(study, since=started_at)))
