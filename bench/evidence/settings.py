"""What `mnist-bench confirm` measures: one frozen dataclass from the command line to the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ConfirmSettings:
    """What `mnist-bench confirm` measures. The defaults fit the 30-minute workflow on a 2-core CPU."""

    study: str | None = None  # default: the only study in the results folder
    top: int = 3  # distinct configs, best mean value first
    seeds: int = 2  # seeds besides the search's own: each config ends with seeds + 1
    sweep: bool = True  # also the configs one step from the best in each network knob
    results_dir: Path = Path("results")
    storage: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        for name in ("top", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
