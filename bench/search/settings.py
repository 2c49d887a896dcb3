"""A search's settings: one frozen dataclass from the command line to the runner, with the defaults.

The defaults here are the command's defaults (bench.cli reads them), chosen so that
`mnist-bench search --trials 50` on a 2-core CPU finishes in under 15 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.store import layout
from bench.store.storage import (GRACE_PERIOD, HEARTBEAT_INTERVAL, settings_record,
                                 storage_url)
from bench.search.spaces import SearchSpace, TrialPlan
from mnist_cnn.train import PRECISIONS

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc")
PRUNERS = ("median", "hyperband", "sha", "wilcoxon", "none")


@dataclass(frozen=True)
class SearchSettings:
    """Everything one `mnist-bench search` needs; stored with the study as `search_settings`.

    `trials` is the study's total: a rerun adds trials until that many are COMPLETE or PRUNED.
    """

    space: str = "faq"
    trials: int = 50
    sampler: str = "tpe"
    # Chosen with `mnist-bench compare` on the faq grid's curve table (TPE, 50 trials, 10 seeds):
    # Hyperband's best was within 0.1 pp of the table's best in 8 of 10 seeds, successive halving
    # (which judges every trial after an eighth of an epoch, mostly noise) in 5, at 1.24x less compute.
    pruner: str = "hyperband"
    # One epoch of all 55,000 training images, scored 8 times: the best faq configs reach 98.9%
    # validation accuracy in it, and successive halving can stop poor ones after an eighth.
    epochs: int = 1
    train_size: int | None = None
    validation_size: int = 5000
    evaluations_per_epoch: int = 8
    # None: every evaluation scores the whole split. A subset (e.g. 1,000) makes a search 20-30%
    # faster, but in real searches it led the pruner and sampler to worse configs
    # (docs/measurements.md, "Faster searches").
    interim_validation_size: int | None = None
    # None: the device's default (fp32 on the CPU, bf16 autocast on CUDA). "bf16" on a CPU with
    # native bf16 trains the faq networks 1.4-1.8x faster; see docs/measurements.md.
    precision: str | None = None
    seed: int = 0
    # The seed of the validation split and train subset; None: `seed`. `grid --seeds` holds it
    # fixed while the training seed varies, so a config's seeds are repeats on one split.
    split_seed: int | None = None
    timeout: float | None = None
    study_name: str | None = None
    storage: str | None = None
    results_dir: Path = Path("results")
    data_dir: Path | None = None
    device: str | None = None
    workers: int = 1
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = GRACE_PERIOD
    replay: bool = True  # answer configs already measured under these settings from the table
    replay_other_seeds: bool = True  # False: replay only curves of this search's own seed
    curve_table: Path | None = None  # default: layout.curve_table(results_dir)
    artifacts: str | None = None  # artifact store for kept weights; default: results/artifacts

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}: use one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"unknown pruner {self.pruner!r}: use one of {', '.join(PRUNERS)}")
        for name in ("trials", "epochs", "validation_size", "evaluations_per_epoch", "workers",
                     "heartbeat_interval", "grace_period"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("train_size", "interim_validation_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}: use one of "
                             f"{', '.join(PRECISIONS)}")
        if self.interim_validation_size and self.interim_validation_size >= self.validation_size:
            object.__setattr__(self, "interim_validation_size", None)  # no subset: the whole split
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError("grace_period must be longer than heartbeat_interval")
        if self.study_name is not None:
            layout.check_name(self.study_name)  # "" too: an empty name is not the default

    def plan(self, seed: int | None = None) -> TrialPlan:
        """How every trial of this search trains (`seed` overrides the search's, for repeats)."""
        return TrialPlan(epochs=self.epochs, seed=self.seed if seed is None else seed,
                         evaluations_per_epoch=self.evaluations_per_epoch,
                         interim_validation_size=self.interim_validation_size,
                         precision=self.precision)

    def name_for(self, space: SearchSpace) -> str:
        """The study name: given, or space-sampler-pruner so reruns of one command resume."""
        return self.study_name or f"{space.name}-{self.sampler}-{self.pruner}"

    def storage_url(self, study_name: str) -> str:
        """The given URL (postgresql:// meaning the psycopg 3 driver), else SQLite in results."""
        return storage_url(self.storage, self.results_dir, study_name)

    def record(self) -> dict[str, Any]:
        """JSON-ready settings for the record (a storage password masked)."""
        return settings_record(self)

    @property
    def data_seed(self) -> int:
        """The seed the validation split and train subset are drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def curve_table_path(self) -> Path:
        return Path(self.curve_table or layout.curve_table(self.results_dir))

    @property
    def artifact_location(self) -> str:
        return str(self.artifacts or layout.artifacts_dir(self.results_dir))
