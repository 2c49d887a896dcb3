"""A search's Optuna study: samplers and pruners by name, creating or resuming it, dead workers.

The study lives in Optuna's own storage (bench.store.storage: SQLite under results/<study>/ by
default, or any RDB URL such as postgresql://...), so plain `optuna.load_study` reads it and many
processes or machines can share it. bench.search.runner runs trials on it.

A worker that dies leaves its trial RUNNING. Optuna's heartbeat fails it after the grace period;
on the machine that ran it, `fail_dead_trials` fails it at once, since there its process can be
looked up. Either way the trial is retried with Optuna's retry callback.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from bench.store import layout, schema
from bench.search.settings import PRUNERS, SAMPLERS, SearchSettings
from bench.store.storage import RetryAfresh, open_storage
from bench.search.spaces import SearchSpace

# Trials that count toward --trials: finished with a result. FAIL trials (interrupted, crashed,
# or a worker's lost heartbeat) do not count: they are retried or replaced.
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
# Trials that hold a place under the trial limit: counted ones plus those running or queued.
CLAIMED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
DEAD_WORKER_REASON = "worker {} is gone"  # end_reason of a trial failed by `fail_dead_trials`
# Settings that must match to resume a study: they decide what a trial's value means.
RESUME_MUST_MATCH = ("epochs", "train_size", "validation_size", "evaluations_per_epoch",
                     "interim_validation_size", "precision", "seed", "sampler", "pruner")


def quiet_optuna() -> None:
    """Optuna's per-trial log lines would break a progress bar; failures are reported by us."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_sampler(name: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler called `name`, seeded; conditional-free spaces suit all of them."""
    if name == "tpe":
        # constant_liar keeps parallel workers from proposing the same point.
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if name == "cmaes":
        # CMA-ES models int and float params; categoricals are sampled at random.
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)
    raise ValueError(f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}")


def make_pruner(name: str, steps_per_trial: int) -> optuna.pruners.BasePruner:
    """The pruner called `name`; a step is one validation evaluation (1..steps_per_trial).

    `wilcoxon` pairs the current trial's learning curve with the best trial's, evaluation by
    evaluation (step i with step i), and prunes once the curve is significantly below the best's:
    our "instances" are the evaluation points, which is the one paired, per-step series we have.
    """
    if name == "median":
        # From the second evaluation on (the first is noisy), stop trials below the median.
        # n_min_trials: the median is over 5 curves at least; a completed trial has reported every
        # step, so this only matters where completed trials have no curve (compare's draws outside
        # a space's designed points), which n_startup_trials alone would count.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2, n_min_trials=5)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=steps_per_trial,
                                              reduction_factor=3)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}: use one of {', '.join(PRUNERS)}")


# Samplers whose points follow the trial number (GridSampler shuffles its grid by the seed and
# gives trial n the n-th point; QMC scrambles one sequence by it): every worker and resume of a
# study must share one seed, as Optuna asks, or they visit points twice and skip others.
SHARED_SEED_SAMPLERS = ("grid", "qmc")


def sampler_seed(settings: SearchSettings, worker_index: int, trials_at_start: int) -> int:
    """A distinct seed per worker, machine and resume, reproducible for the same command."""
    host = zlib.crc32(socket.gethostname().encode())
    sequence = np.random.SeedSequence([settings.seed, worker_index, trials_at_start, host])
    return int(sequence.generate_state(1)[0])


def search_storage(settings: SearchSettings, space: SearchSpace) -> optuna.storages.RDBStorage:
    """The storage of the search's study (for SQLite, its folder is made first)."""
    name = settings.name_for(space)
    if settings.storage is None:
        layout.make_folder(layout.study_dir(settings.results_dir, name))
    return open_storage(settings.storage_url(name), settings.heartbeat_interval,
                        settings.grace_period)


def open_study(settings: SearchSettings, space: SearchSpace, worker_index: int = 0,
               storage: optuna.storages.RDBStorage | None = None) -> optuna.Study:
    """Create the study or load it to resume; refuse to mix trials of different settings.

    The sampler is seeded per worker and per resume (see `sampler_seed`), so a rerun does not
    replay the random start-up trials it already ran; grid and QMC share the search's seed.
    """
    name = settings.name_for(space)
    if storage is None:
        storage = search_storage(settings, space)
    steps = settings.epochs * settings.evaluations_per_epoch
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                load_if_exists=True, pruner=make_pruner(settings.pruner, steps))
    stored = study.user_attrs.get(schema.STUDY_ATTR_SETTINGS)
    if stored is None:
        study.set_user_attr(schema.STUDY_ATTR_SETTINGS, settings.record())
        study.set_user_attr(schema.STUDY_ATTR_SPACE, space.describe())
    else:
        check_resumable(name, stored, study.user_attrs.get(schema.STUDY_ATTR_SPACE), settings, space)
    seed = (settings.seed if settings.sampler in SHARED_SEED_SAMPLERS
            else sampler_seed(settings, worker_index, len(study.get_trials(deepcopy=False))))
    study.sampler = make_sampler(settings.sampler, space, seed)
    return study


def check_resumable(name: str, stored: dict, stored_space: dict | None,
                    settings: SearchSettings, space: SearchSpace,
                    rename_hint: str = "--study-name") -> None:
    """Refuse to add trials to a stored study run with other settings or another space."""
    current = settings.record()
    for key in RESUME_MUST_MATCH:
        if stored.get(key) != current[key]:
            raise ValueError(
                f"study {name!r} was run with {key}={stored.get(key)!r}, this command asks "
                f"{key}={current[key]!r}: use the same settings to resume, or a new {rename_hint}"
            )
    if stored_space is not None and not _json_equal(stored_space, space.describe()):
        raise ValueError(f"study {name!r} was run on a different search space than "
                         f"{space.source}: use a new {rename_hint}")


def _json_equal(a: Any, b: Any) -> bool:
    """Compare as stored JSON compares: tuples come back as lists."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def counted_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=COUNTED_STATES)


def claimed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=CLAIMED_STATES)


def recovered_trials(study: optuna.Study, since: datetime) -> list[optuna.trial.FrozenTrial]:
    """Trials of dead workers failed since `since` (by any process): failed at once by
    `fail_dead_trials`, or by a stale heartbeat and then retried."""
    trials = study.get_trials(deepcopy=False)
    histories = [RetryAfresh.retry_history(t) for t in trials]
    retried = {history[-1] for history in histories if history}
    prefix = DEAD_WORKER_REASON.split("{}")[0]
    return [t for t in trials if t.state == TrialState.FAIL
            and t.datetime_complete is not None and t.datetime_complete >= since
            and (t.number in retried
                 or str(t.user_attrs.get(schema.ATTR_END_REASON, "")).startswith(prefix))]


@dataclass(frozen=True)
class WorkerProcess:
    """The process running a trial, recorded so that its machine can tell whether it still lives.

    `process` is None where /proc is missing: such a worker is never judged dead (pids get reused).
    """

    host: str
    pid: int
    process: str | None  # "<boot id> <pid namespace> <start time in clock ticks>"

    @classmethod
    def this(cls) -> "WorkerProcess":
        return cls(socket.gethostname(), os.getpid(), _process_identity(os.getpid()))

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial) -> "WorkerProcess | None":
        host, _, pid = str(trial.user_attrs.get(schema.ATTR_WORKER, "")).rpartition(":")
        if not host or not pid.isdigit():
            return None  # died before recording its worker: only the heartbeat tells
        return cls(host, int(pid), trial.user_attrs.get(schema.ATTR_WORKER_PROCESS))

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}"

    def record(self, trial: optuna.Trial) -> None:
        trial.set_user_attr(schema.ATTR_WORKER_PROCESS, self.process)  # first: `of` reads both once named
        trial.set_user_attr(schema.ATTR_WORKER, self.name)

    def is_local(self) -> bool:
        """Whether this process can see it: same host, boot and pid namespace, /proc on both."""
        here = WorkerProcess.this()
        if self.process is None or here.process is None or self.host != here.host:
            return False
        # another boot or another container: its processes are not ours to see
        return self.process.rsplit(" ", 1)[0] == here.process.rsplit(" ", 1)[0]

    def is_gone(self) -> bool:
        """Provably dead: local, and no live process has its pid and start time now."""
        return self.is_local() and _process_identity(self.pid) != self.process


def _process_identity(pid: int) -> str | None:
    """Boot id, pid namespace and start time of a live process; None if it is gone or a zombie,
    or where /proc is missing (then it cannot be told apart from a later process with its pid)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    state, start_ticks = fields[0], fields[19]  # fields 3 and 22 of proc(5)
    if state in ("Z", "X"):  # killed, not yet reaped by its parent
        return None
    return f"{boot} {namespace} {start_ticks}"


def fail_dead_trials(study: optuna.Study, storage: optuna.storages.RDBStorage
                     ) -> list[optuna.trial.FrozenTrial]:
    """Fail RUNNING trials whose worker on this machine is gone, and retry them as Optuna's
    heartbeat would, without waiting for the grace period."""
    retry = storage.get_heartbeat_stale_trial_callback()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = WorkerProcess.of(trial)
        if worker is None or not worker.is_gone():
            continue
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_user_attr(trial_id, schema.ATTR_END_REASON,
                                        DEAD_WORKER_REASON.format(worker.name))
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process failed it first, and retried it
        dead = storage.get_trial(trial_id)
        if retry is not None:
            retry(study, dead)
        failed.append(dead)
    return failed
