"""A search's settings and its Optuna study: samplers and pruners by name, storage, resume checks.

The study lives in Optuna's own storage (SQLite under results/<study>/ by default, or any RDB URL
such as postgresql://...), so plain `optuna.load_study` reads it and many processes or machines
can share it. bench.runner runs trials on it.
"""

from __future__ import annotations

import json
import socket
import time
import warnings
import zlib
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError, ProgrammingError

from bench import layout
from bench.settings import PRUNERS, SAMPLERS, SearchSettings, hidden_url
from bench.spaces import SearchSpace

# Trials that count toward --trials: finished with a result. FAIL trials (interrupted, crashed,
# or a worker's lost heartbeat) do not count: they are retried or replaced.
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
# Trials that hold a place in the budget: counted ones plus those running or queued.
CLAIMED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
STORAGE_ATTEMPTS = 4
STUDY_ATTR_SETTINGS = "search_settings"
STUDY_ATTR_SPACE = "search_space"
# Settings that must match to resume a study: they decide what a trial's value means.
RESUME_MUST_MATCH = ("epochs", "train_size", "validation_size", "evaluations_per_epoch", "seed",
                     "sampler", "pruner")


class StorageError(ValueError):
    """The storage URL cannot be opened; the message hides any password."""


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
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
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


def sampler_seed(settings: SearchSettings, worker_index: int, trials_at_start: int) -> int:
    """A distinct seed per worker, machine and resume, reproducible for the same command."""
    host = zlib.crc32(socket.gethostname().encode())
    sequence = np.random.SeedSequence([settings.seed, worker_index, trials_at_start, host])
    return int(sequence.generate_state(1)[0])


def open_storage(url: str, settings: SearchSettings) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats: a killed worker's trial turns FAIL and is retried."""
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return _rdb_storage(url, settings)
        except (IntegrityError, ProgrammingError):
            # Workers or machines starting together on a fresh database race to create
            # Optuna's tables; the loser finds them made on the next attempt.
            if attempt == STORAGE_ATTEMPTS - 1:
                raise StorageError(f"cannot create Optuna's tables in {hidden_url(url)}") from None
            time.sleep(1.0 + attempt)
        except Exception as error:  # driver errors vary widely; all mean "cannot open"
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise StorageError(f"cannot open storage {hidden_url(url)}: {reason}") from None
    raise AssertionError("unreachable")


def _rdb_storage(url: str, settings: SearchSettings) -> optuna.storages.RDBStorage:
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=settings.heartbeat_interval,
            grace_period=settings.grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=2
            ),
        )
    if url.startswith("sqlite"):
        # Write-ahead logging: readers (a report, a dashboard, other workers) never block
        # a worker's writes. The mode is stored in the database file, so once is enough.
        with storage.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    return storage


def open_study(settings: SearchSettings, space: SearchSpace, worker_index: int = 0) -> optuna.Study:
    """Create the study or load it to resume; refuse to mix trials of different settings.

    The sampler is seeded per worker and per resume (see `sampler_seed`), so a rerun does not
    replay the random start-up trials it already ran.
    """
    name = settings.name_for(space)
    url = settings.storage_url(name)
    if settings.storage is None:
        layout.study_dir(settings.results_dir, name).mkdir(parents=True, exist_ok=True)
    storage = open_storage(url, settings)
    steps = settings.epochs * settings.evaluations_per_epoch
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                load_if_exists=True, pruner=make_pruner(settings.pruner, steps))
    stored = study.user_attrs.get(STUDY_ATTR_SETTINGS)
    if stored is None:
        study.set_user_attr(STUDY_ATTR_SETTINGS, settings.record())
        study.set_user_attr(STUDY_ATTR_SPACE, space.describe())
    else:
        check_resumable(name, stored, study.user_attrs.get(STUDY_ATTR_SPACE), settings, space)
    seed = sampler_seed(settings, worker_index, len(study.get_trials(deepcopy=False)))
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
