"""Fill the curve table: train every valid config of a finite space once, at the search's fidelity.

The grid is an ordinary study (Optuna's GridSampler, no pruner) under results/<space>-grid/, so it
resumes, survives Ctrl-C and shows progress like any search (a point whose run was interrupted or
killed is retried when the grid is resumed); every trained curve lands in the
curve table, and configs already complete there with the grid's seed are replayed, not retrained.
With several training seeds, each seed is a study of its own (<space>-grid-seed<N> after the
first), all on the validation split of the first seed, so a config's seeds are repeats of one
measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from bench.store import schema
from bench.store.curves import CurveTable
from bench.store.reference import merge_shipped
from bench.store.storage import RetryAfresh
from bench.search.runner import SearchOutcome, run_search
from bench.search.settings import SearchSettings
from bench.search.spaces import SearchSpace, load_space
from bench.search.study import check_resumable, counted_trials, search_storage
from mnist_cnn.model import CNNConfig, InvalidConfig
from mnist_cnn.train import TrainSettings


GRID_ID = "grid_id"  # the system attr in which Optuna's GridSampler keeps a trial's point


@dataclass(frozen=True)
class GridSize:
    points: int
    valid: int

    @property
    def invalid(self) -> int:
        return self.points - self.valid


@dataclass(frozen=True)
class GridOutcome:
    size: GridSize
    search: SearchOutcome
    trained: int  # configs the grid study trained (over all its runs)
    replayed: int  # configs answered from the curve table
    recorded_seconds: float  # training seconds of the grid's configs, as recorded
    unvisited: int = 0  # valid points a finished study never tried (see `unvisited_points`)
    retried: int = 0  # retries queued by this run for points whose every run had failed

    def summary(self) -> str:
        text = (f"grid of {self.size.points} configs ({self.size.valid} valid, {self.size.invalid} "
                f"invalid): {self.trained} trained, {self.replayed} replayed from the curve table; "
                f"recorded training time of the grid {self.recorded_seconds / 60:.1f} min; "
                f"this run {self.search.seconds / 60:.1f} min")
        if self.retried:
            text += (f"; retried {self.retried} point{'s' if self.retried != 1 else ''} whose run "
                     "had been interrupted or had failed")
        if self.unvisited:
            text += (f"\nwarning: study {self.search.study_name} has all its trials but never tried "
                     f"{self.unvisited} valid configs: rerun the same command to retry them; if "
                     "that leaves them untried (a study whose workers or resumes under mnist-bench "
                     "before the grid's seed was shared visited points twice), rerun with "
                     "--study-name <a new name>; what was trained replays from the curve table")
        return text


def valid_grid(space: SearchSpace,
               settings: SearchSettings) -> list[tuple[dict[str, Any], CNNConfig, TrainSettings]]:
    """The grid points that make a network, with the config and training settings a trial of
    `settings` would train; SpaceError where the space has no finite grid."""
    valid = []
    for params in space.grid_points():
        config, train_settings = space.build(params, settings.plan())
        try:
            space.check(config)
        except InvalidConfig:
            continue
        valid.append((params, config, train_settings))
    return valid


def grid_size(settings: SearchSettings) -> GridSize:
    """How many points the space's grid has, and how many of them make a network."""
    space = load_space(settings.space)
    return GridSize(points=len(space.grid_points()), valid=len(valid_grid(space, settings)))


def grid_settings(settings: SearchSettings, size: GridSize) -> SearchSettings:
    """The search that visits each grid point once, with no pruning, replaying what is known."""
    return replace(settings, sampler="grid", pruner="none", trials=size.points, replay=True,
                   replay_other_seeds=False,
                   study_name=settings.study_name or f"{load_space(settings.space).name}-grid")


def seed_settings(settings: SearchSettings, seeds: int) -> list[SearchSettings]:
    """One grid per training seed, `settings.seed` onwards, all on the split of `settings.seed`."""
    name = settings.study_name or f"{load_space(settings.space).name}-grid"
    return [replace(settings, seed=settings.seed + offset, split_seed=settings.data_seed,
                    study_name=name if offset == 0 else f"{name}-seed{settings.seed + offset}")
            for offset in range(seeds)]


def run_grids(settings: SearchSettings, seeds: int) -> list[GridOutcome]:
    """The grid with each of `seeds` training seeds in turn; stops at the first interrupted one.
    The reference tables under the results folder are merged into the curve table first, so a
    clone extends what it ships (`--seeds 5` trains seeds 3 and 4) rather than measuring it again."""
    for note in merge_shipped(settings.results_dir, CurveTable(settings.curve_table_path)):
        tqdm.write(note)
    outcomes = []
    for one_seed in seed_settings(settings, seeds):
        outcomes.append(run_grid(one_seed))
        if outcomes[-1].search.exit_code:
            break
    return outcomes


def run_grid(settings: SearchSettings) -> GridOutcome:
    size = grid_size(settings)
    grid = grid_settings(settings, size)
    retried, visited_twice = retry_failed_points(grid)
    # The study's total counts COMPLETE and PRUNED trials, one place per point; a trial that
    # repeats a point (racing workers near the grid's end) holds one, so it is given back.
    grid = replace(grid, trials=size.points + visited_twice)
    search = run_search(grid)
    study = optuna.load_study(study_name=search.study_name,
                              storage=grid.storage_url(search.study_name))
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()
              and schema.ATTR_INVALID_REASON not in t.user_attrs]
    replayed = sum(1 for t in trials if t.user_attrs.get(schema.ATTR_REPLAYED))
    trained = sum(1 for t in trials if not t.user_attrs.get(schema.ATTR_REPLAYED)
                  and t.user_attrs.get(schema.ATTR_LEARNING_CURVE))
    recorded = sum(r["seconds"] for t in trials for r in t.user_attrs.get(schema.ATTR_LEARNING_CURVE, []))
    unvisited = 0 if search.exit_code else len(unvisited_points(study, settings))
    return GridOutcome(size=size, search=search, trained=trained, replayed=replayed,
                       recorded_seconds=recorded, unvisited=unvisited, retried=len(retried))


def retry_failed_points(settings: SearchSettings) -> tuple[list[int], int]:
    """Queue a retry of each grid point whose every trial failed (its run interrupted or killed),
    with Optuna's retry callback, which keeps the trial's grid_id: GridSampler counts a failed
    point as visited, so without this a resumed grid would never train it. Each resume retries
    such a point again, however often it was interrupted. Returns the failed trials retried
    now, and how many finished trials repeat a point's params (see `run_grid`).

    Two processes resuming one study at the same instant may both queue a point: it then runs
    twice (the second replays the first from the curve table) and the repeat holds a place that
    the next resume gives back."""
    space = load_space(settings.space)
    storage = search_storage(settings, space)
    try:
        study = optuna.load_study(study_name=settings.name_for(space), storage=storage)
        check_resumable(study.study_name, study.user_attrs[schema.STUDY_ATTR_SETTINGS],
                        study.user_attrs.get(schema.STUDY_ATTR_SPACE), settings, space)
    except (KeyError, ValueError):
        return [], 0  # not begun yet, or other settings: run_search says which
    trials = study.get_trials(deepcopy=False)
    held = {t.system_attrs.get(GRID_ID) for t in trials if t.state != TrialState.FAIL}
    retry = RetryAfresh(max_retry=None)
    retried = []
    for trial in trials:
        point = trial.system_attrs.get(GRID_ID)
        if trial.state == TrialState.FAIL and point is not None and point not in held:
            retry(study, trial)
            held.add(point)
            retried.append(trial.number)
    counted = counted_trials(study)
    return retried, len(counted) - len({tuple(sorted(t.params.items())) for t in counted})


def unvisited_points(study: optuna.Study, settings: SearchSettings) -> list[dict[str, Any]]:
    """The valid grid points no finished trial of `study` has the params of."""
    visited = {tuple(sorted(t.params.items()))
               for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                                 TrialState.PRUNED))}
    return [params for params, _, _ in valid_grid(load_space(settings.space), settings)
            if tuple(sorted(params.items())) not in visited]
