"""What `mnist-bench confirm` measures: one frozen dataclass from the command line to the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.evidence.decisions import FIRST_SEEDS, MARGIN, MAX_SEEDS, MIN_SEEDS


@dataclass(frozen=True)
class ConfirmSettings:
    """What `mnist-bench confirm` measures, as a race on held-out seeds (the search's own seed
    selected the configs and decides nothing)."""

    study: str | None = None  # default: the only study in the results folder
    top: int = 3  # distinct configs, best search value first
    seeds: int = FIRST_SEEDS  # held-out seeds every config gets in the race's first round
    max_seeds: int = MAX_SEEDS  # held-out seeds a config may get while its comparisons stay undecided
    minutes: float | None = None  # stop starting new runs after this long (a rerun continues)
    margin: float = MARGIN  # of practical equivalence, a fraction (0.003 = 0.3 pp)
    sweep: bool = True  # also the configs one step from the best in each network knob
    # Train for this many epochs instead of the study's own: the same race at another budget (a
    # fidelity, and a study <study>-epochsE-confirm, of its own). None: the study's budget.
    epochs: int | None = None
    results_dir: Path = Path("results")
    storage: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if self.top < 1:
            raise ValueError(f"top must be at least 1, got {self.top}")
        if self.seeds < MIN_SEEDS:
            raise ValueError(f"seeds must be at least {MIN_SEEDS} (a test needs two), "
                             f"got {self.seeds}")
        if self.max_seeds < self.seeds:
            raise ValueError(f"max seeds ({self.max_seeds}) must be at least seeds ({self.seeds})")
        if not 0 < self.margin < 0.1:
            raise ValueError(f"margin must be between 0 and 10 pp, got {self.margin * 100:g} pp")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
