"""Decisions, not p-values: each comparison ends better, equivalent within a margin, worse, or
undecided with about the seeds it would take, on seeds that did not select the configs.

Methods (named in the report next to the numbers they produce):
- a difference: Welch's t (two configs' seeds) or a paired t (two configs on the same seeds),
  from scipy.stats; each sample's sd is taken as at least one validation image (`resolution`),
  the finest step an accuracy moves in, so identical values never give a zero-width interval;
- better or worse: the two-sided test, Holm-adjusted over the family, p < 0.05;
- equivalent: two one-sided tests (TOST) against -margin and +margin, Holm-adjusted over the
  family, p < 0.05 (the 90% interval inside +-margin): equivalence is shown, never read from a
  large p;
- undecided: neither; "about N more seeds" is the count at which the observed difference and
  sd would decide one way or the other (Student's quantiles, no multiplicity: a rough guide).

Why scipy's from-stats tests and not statsmodels' ttost_ind: the resolution floor needs the
sd as an input, and scipy is already a dependency. baycomp's correlated t-test is not used: it
always applies the cross-validation (Nadeau-Bengio) correction, which is wrong for independent
training seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from scipy import stats

ALPHA = 0.05
MARGIN = 0.001  # 0.1 pp: about one seed's sd at the default fidelity
BEST, BETTER, EQUIVALENT, WORSE, UNDECIDED = "best", "better", "equivalent", "worse", "undecided"
MIN_SEEDS = 2  # per side, for a test
MAX_SEEDS_ESTIMATE = 1000  # "about N more seeds" is capped here (the difference may be ~0)
METHOD = ("held-out seeds only; Welch's t (paired t for FAQ pairs) with each sd at least one "
          "validation image; better/worse: two-sided, equivalent: two one-sided tests against "
          "+-margin; Holm-adjusted over the family, 5%")


@dataclass(frozen=True)
class Comparison:
    """config - reference, over held-out seeds: the difference, its 95% interval and the tests."""

    difference: float
    ci_low: float
    ci_high: float
    p_different: float  # two-sided, unadjusted
    p_equivalent: float  # TOST against +-margin, unadjusted
    seeds: int  # the smaller side's held-out seeds (pairs, when paired)
    difference_sd: float  # sd of one seed's difference: the mean difference's se is this / sqrt(n)


def unpaired(values: np.ndarray, reference: np.ndarray, margin: float,
             resolution: float) -> Comparison | None:
    """Welch's comparison of two configs' held-out seeds; None with fewer than two a side."""
    a, b = np.asarray(values, float), np.asarray(reference, float)
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return None
    sd_a, sd_b = floored_sd(a, resolution), floored_sd(b, resolution)
    mean_a, mean_b = float(a.mean()), float(b.mean())

    def p(shift: float, alternative: str) -> float:
        return float(stats.ttest_ind_from_stats(mean_a + shift, sd_a, len(a), mean_b, sd_b, len(b),
                                                equal_var=False, alternative=alternative).pvalue)

    variance_a, variance_b = sd_a**2 / len(a), sd_b**2 / len(b)
    se = math.sqrt(variance_a + variance_b)
    df = (variance_a + variance_b) ** 2 / (variance_a**2 / (len(a) - 1)
                                           + variance_b**2 / (len(b) - 1))
    difference = mean_a - mean_b
    half = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
    return Comparison(difference, difference - half, difference + half, p(0.0, "two-sided"),
                      max(p(margin, "greater"), p(-margin, "less")), min(len(a), len(b)),
                      math.sqrt(sd_a**2 + sd_b**2))


def paired(differences: np.ndarray, margin: float, resolution: float) -> Comparison | None:
    """A paired comparison from per-seed differences; None with fewer than two pairs."""
    d = np.asarray(differences, float)
    if len(d) < MIN_SEEDS:
        return None
    sd = floored_sd(d, resolution)
    mean = float(d.mean())
    se = sd / math.sqrt(len(d))
    df = len(d) - 1

    def p(shift: float, alternative: str) -> float:
        # Student's one-sample t test of mean + shift against zero
        t = (mean + shift) / se
        if alternative == "greater":
            return float(stats.t.sf(t, df))
        if alternative == "less":
            return float(stats.t.cdf(t, df))
        return float(2 * stats.t.sf(abs(t), df))

    half = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
    return Comparison(mean, mean - half, mean + half, p(0.0, "two-sided"),
                      max(p(margin, "greater"), p(-margin, "less")), len(d), sd)


def floored_sd(values: np.ndarray, resolution: float) -> float:
    """The sample sd, at least one `resolution` step (one validation image)."""
    values = np.asarray(values, float)
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return max(sd, resolution)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the order given; NaN stays NaN."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not np.isnan(p)]
    indexed.sort()
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted


def decide_family(comparisons: list[Comparison | None], margin: float) -> list[dict]:
    """Each comparison's decision, Holm-adjusted over the family, with the seeds it would take
    when undecided."""
    p_different = holm([c.p_different if c else float("nan") for c in comparisons])
    p_equivalent = holm([c.p_equivalent if c else float("nan") for c in comparisons])
    decided = []
    for comparison, different, equivalent in zip(comparisons, p_different, p_equivalent):
        if comparison is None:
            decided.append({"decision": UNDECIDED, "p_different": np.nan,
                            "p_equivalent": np.nan, "more_seeds": np.nan})
            continue
        if equivalent < ALPHA:
            decision = EQUIVALENT
        elif different < ALPHA:
            decision = BETTER if comparison.difference > 0 else WORSE
        else:
            decision = UNDECIDED
        decided.append({"decision": decision, "p_different": different,
                        "p_equivalent": equivalent,
                        "more_seeds": (seeds_to_decide(comparison, margin)
                                       if decision == UNDECIDED else 0)})
    return decided


def seeds_to_decide(comparison: Comparison, margin: float) -> int:
    """About how many more held-out seeds a side would make the comparison decide, if the
    observed difference and sd held: the fewest at which the t interval (Student's quantiles at
    that many seeds, no multiplicity) would exclude zero or fit inside +-margin."""
    distance = abs(comparison.difference)
    for seeds in range(comparison.seeds + 1, comparison.seeds + MAX_SEEDS_ESTIMATE):
        se = comparison.difference_sd / math.sqrt(seeds)
        df = seeds - 1
        if (distance > 0 and stats.t.ppf(1 - ALPHA / 2, df) * se < distance) or \
                (distance < margin and stats.t.ppf(1 - ALPHA, df) * se < margin - distance):
            return seeds - comparison.seeds
    return MAX_SEEDS_ESTIMATE


def race_rounds(configs: list[str], first_seeds: int, max_seeds: int,
                open_configs: Callable[[], set[str]]) -> Iterator[dict[str, int]]:
    """The held-out seeds each config should have, round by round, as F-Race and irace race:
    every config starts with `first_seeds`; after each round (the caller measures what the
    round asks, then `open_configs` names the configs in a comparison still undecided) only
    those get one seed more, up to `max_seeds`. Configs decided worse, equivalent or better
    stop getting seeds. Ends when nothing is open or every open config has `max_seeds`."""
    wanted = {config: min(first_seeds, max_seeds) for config in configs}
    while True:
        yield dict(wanted)
        grow = [config for config in open_configs() if wanted.get(config, max_seeds) < max_seeds]
        if not grow:
            return
        for config in grow:
            wanted[config] += 1
