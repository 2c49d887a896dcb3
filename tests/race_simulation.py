"""Races simulated through the real decision path (bench.evidence.statistics and decisions, the
rounds of bench.evidence.decisions.race_rounds), on seeds drawn as MNIST's: a normal seed sd,
accuracies in whole validation images. Used by the tests of error rates and by the measurement
in docs/measurements.md."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.evidence.decisions import MARGIN, UNDECIDED, Looks, race_rounds
from bench.evidence.settings import ConfirmSettings
from bench.evidence.statistics import decide_pairs, rank_against_best

SD = 0.001  # 0.1 pp: one seed's sd at the default fidelity
RESOLUTION = 1 / 5000  # one validation image


def draw(rng: np.random.Generator, mean: float, n: int) -> np.ndarray:
    """n seeds of a config, in whole validation images as real accuracies are."""
    return np.round(rng.normal(mean, SD, n) / RESOLUTION) * RESOLUTION


@dataclass
class Race:
    """One race's end: the configs against the best, the FAQ pairs, the seeds each got."""

    ranked: pd.DataFrame
    pairs: pd.DataFrame
    seeds: dict[str, int]


def race(rng: np.random.Generator, means: dict[str, float], pairs: list[tuple[str, str]] = (),
         settings: ConfirmSettings = ConfirmSettings(), margin: float = MARGIN) -> Race:
    """Race `means` (config -> true accuracy; the first is the search's pick, the cheapest last)
    with the FAQ `pairs` (low, high), as `confirm` does: `settings.seeds` held-out seeds each,
    then one more a round for the configs in an undecided comparison, up to `max_seeds`."""
    seeds = {config: draw(rng, mean, settings.max_seeds) for config, mean in means.items()}
    names = list(means)
    per_config = pd.DataFrame({"config_key": names,
                            "selection_value": np.linspace(1.0, 0.9, len(names)),
                            "flops_per_image": np.linspace(len(names), 1, len(names)),
                            "resolution": RESOLUTION})
    looks = Looks(settings.seeds, settings.max_seeds)
    measured = {config: 0 for config in names}
    state: dict[str, pd.DataFrame] = {}

    def decide() -> None:
        heldout = {c: seeds[c][:n] for c, n in measured.items()}
        frame = per_config.assign(heldout_seeds=[measured[c] for c in names],
                               mean=[heldout[c].mean() for c in names])
        state["ranked"] = rank_against_best(frame, heldout, margin, looks)
        rows = [{"fidelity_key": "f", "low_config": low, "high_config": high,
                 "differences": heldout[high][:n] - heldout[low][:n], "resolution": RESOLUTION}
                for low, high in pairs
                for n in [min(measured[low], measured[high])]]
        state["pairs"] = decide_pairs(pd.DataFrame(rows), margin, looks) if rows else pd.DataFrame()

    def open_configs() -> set[str]:
        decide()
        ranked, faq = state["ranked"], state["pairs"]
        best = ranked[ranked["is_best"]]["config_key"].iloc[0]
        undecided = set(ranked[ranked["decision"] == UNDECIDED]["config_key"])
        opened = undecided | ({best} if undecided else set())
        if len(faq):
            still = faq[faq["decision"] == UNDECIDED]
            opened |= set(still["low_config"]) | set(still["high_config"])
        return opened

    for wanted in race_rounds(names, settings.seeds, settings.max_seeds, open_configs):
        measured.update(wanted)
    decide()
    return Race(state["ranked"], state["pairs"], dict(measured))


def readme_race(rng: np.random.Generator, worse_by: dict[str, float] | None = None,
                settings: ConfirmSettings = ConfirmSettings(), margin: float = MARGIN) -> Race:
    """A race shaped like the README's: the search's top 3 and 8 one-step neighbours of the
    best (11 configs), and the 8 FAQ pairs of the best with each neighbour; all equal at 98.8%
    but for `worse_by` (config -> how much less accurate)."""
    names = ["best", "top2", "top3", *(f"n{i}" for i in range(8))]
    means = {name: 0.988 - (worse_by or {}).get(name, 0.0) for name in names}
    pairs = [("best", f"n{i}") if i % 2 else (f"n{i}", "best") for i in range(8)]
    return race(rng, means, pairs, settings, margin)


def error_rates(races: int, seed: int = 0) -> list[str]:
    """The issue's scenarios, `races` races each: one line per rate, with its n (the
    measurement in docs/measurements.md; `python -m tests.race_simulation RACES`)."""
    from bench.evidence.decisions import BETTER, EQUIVALENT, WORSE
    rng = np.random.default_rng(seed)
    called = [BETTER, WORSE]

    def rate(name: str, hits: float, n: int) -> str:
        share = hits / n
        return f"{name}: {share:.2%} ({hits:.0f} of {n}, se {np.sqrt(share * (1 - share) / n):.2%})"

    lines = []
    one = [race(rng, {"best": 0.988, "other": 0.988}) for _ in range(races)]
    lines.append(rate("one open comparison of equal configs, false better/worse",
                      sum(r.ranked["decision"].isin(called).any() for r in one), races))
    lines.append(rate("one open comparison of equal configs, decided equivalent",
                      sum((r.ranked["decision"] == EQUIVALENT).any() for r in one), races))
    top = [race(rng, {"best": 0.988, "top2": 0.988, "top3": 0.988}) for _ in range(races)]
    lines.append(rate("top 3 equal, at least one false better/worse",
                      sum(r.ranked["decision"].isin(called).any() for r in top), races))
    readme = [readme_race(rng) for _ in range(races)]
    configs = sum(r.ranked["decision"].isin(called).any() for r in readme)
    faq = sum(r.pairs["decision"].isin(called).any() for r in readme)
    both = sum(r.ranked["decision"].isin(called).any() or r.pairs["decision"].isin(called).any()
               for r in readme)
    lines.append(rate("README-like race (11 equal configs, 8 FAQ pairs), false call against "
                      "the best", configs, races))
    lines.append(rate("README-like race, false call among the FAQ pairs", faq, races))
    lines.append(rate("README-like race, false call in either family", both, races))
    equivalent = sum((r.ranked["decision"] == EQUIVALENT).sum() for r in readme)
    lines.append(rate("README-like race, equal configs decided equivalent to the best",
                      equivalent, 10 * races))
    cheaper = sum(not r.ranked[r.ranked["recommended"]]["is_best"].iloc[0] for r in readme)
    lines.append(rate("README-like race, the one to use cheaper than the best", cheaper, races))
    at_margin = [race(rng, {"best": 0.988, "other": 0.988 - MARGIN}) for _ in range(races)]
    lines.append(rate(f"true difference = margin ({MARGIN * 100:.1f} pp), false equivalent",
                      sum((r.ranked["decision"] == EQUIVALENT).any() for r in at_margin), races))
    worse = [race(rng, {"best": 0.988, "other": 0.985}) for _ in range(races)]
    lines.append(rate("a config 0.3 pp worse, decided worse",
                      sum((r.ranked["decision"] == WORSE).any() for r in worse), races))
    small = [race(rng, {"best": 0.988, "other": 0.987}) for _ in range(races)]
    rows = pd.concat([r.ranked[~r.ranked["is_best"]] for r in small])
    decided = rows[rows["decision"] == WORSE]
    covered = ((rows["diff_ci_low"] <= -0.001) & (rows["diff_ci_high"] >= -0.001)).mean()
    lines.append(f"a config 0.10 pp worse: decided worse in {len(decided)} of {races}, reported "
                 f"at {decided['difference'].mean() * 100:+.3f} pp on average when so; its "
                 f"repeated 95% interval covers -0.10 pp in {covered:.1%} of all {races}")
    return lines


if __name__ == "__main__":
    import sys
    print("\n".join(error_rates(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
