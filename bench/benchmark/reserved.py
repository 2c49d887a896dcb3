"""The reserved seeds of a compare run and the baseline its regret is measured from.

Reserved seeds are recorded training seeds no query may draw; each study's pick is scored on
them. The baseline is cross-fitted: selected on the other (replay) seeds, scored on the reserved
ones, so the best config is not selected and scored on one seed set. Plain functions of each
config's seed -> best validation accuracy, so they are tested on synthetic tables with a known
best (tests/test_compare_reserved.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Baseline", "common_seeds", "cross_fitted_baseline", "reserved_value",
           "resolve_reserved"]


def common_seeds(values: dict[Any, dict[int, float]]) -> tuple[int, ...]:
    """The seeds every config has, in order."""
    if not values:
        return ()
    return tuple(sorted(set.intersection(*(set(seeds) for seeds in values.values()))))


@dataclass(frozen=True)
class Baseline:
    """The config regret is measured from: selected on the replay seeds, scored on the reserved."""

    key: Any
    replay_mean: float  # mean over its recorded seeds but the reserved: what selected it
    replay_seeds: int
    reserved_mean: float  # mean over the reserved seeds: what it is scored by
    reserved_seeds: int


def cross_fitted_baseline(values: dict[Any, dict[int, float]],
                          reserved: tuple[int, ...]) -> Baseline | None:
    """The config whose mean over its replay seeds (every recorded seed but the reserved) is
    highest, with its mean over the reserved seeds: selected and scored on different seeds, so
    its score is not the maximum of noisy means (which overstates the best by about the seed sd
    times the expected maximum of that many normals). Only configs with a replay seed and every
    reserved seed compete; ties go to the first. None with no reserved seed or no such config."""
    best: Baseline | None = None
    for key, seeds in values.items():
        scored = reserved_value(seeds, reserved)
        replay = [value for seed, value in seeds.items() if seed not in reserved]
        if scored is None or not replay:
            continue
        mean = float(np.mean(replay))
        if best is None or mean > best.replay_mean:
            best = Baseline(key, mean, len(replay), scored, len(reserved))
    return best


def reserved_value(seeds: dict[int, float], reserved: tuple[int, ...]) -> float | None:
    """A config's value on the reserved seeds: the mean of its best accuracies there (numpy.mean);
    None unless it has every one of them."""
    if not reserved or any(seed not in seeds for seed in reserved):
        return None
    return float(np.mean([seeds[seed] for seed in reserved]))


def resolve_reserved(asked: tuple[int, ...] | None, values: dict[Any, dict[int, float]]
                     ) -> tuple[int, ...]:
    """The reserved seeds of a run over a table's configs (`values`: each config's seeds): those
    asked for, else the highest seed every config has when they share two or more (none: a
    one-seed table has nothing to reserve). Asked seeds must be recorded for every config and
    leave each a seed to replay from."""
    common = common_seeds(values)
    if asked is None:
        return common[-1:] if len(common) >= 2 else ()
    if values:
        missing = [seed for seed in asked if seed not in common]
        if missing:
            have = ", ".join(map(str, common)) or "none"
            raise ValueError(f"reserved seed {missing[0]} is not recorded for every config of "
                             f"the curve table (the seeds all have: {have}): `mnist-bench grid "
                             f"--seeds {missing[0] + 1}` adds it, or reserve one of those")
        if set(common) <= set(asked):
            raise ValueError(f"reserving seeds {','.join(map(str, asked))} leaves the configs "
                             "no seed to replay from: reserve fewer")
    return tuple(sorted(asked))
