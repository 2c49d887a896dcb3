"""Decisions, not p-values: each comparison ends better, equivalent within a margin, worse, or
undecided with about the seeds it would take, on seeds that did not select the configs, keeping
its error rates however often the race looks.

Methods (named in the report next to the numbers they produce):
- seed noise: the seed sd pooled over the configs (or FAQ pairs) measured at the same fidelity,
  with its degrees of freedom (one config's 2-6 seeds alone give 1-5), where Bartlett's test
  does not find the variance to depend on the config (p >= 0.05); else
  each config's own sd (Welch). Each sd is at least one validation image (`resolution`), so
  identical values never give a zero-width interval;
- a difference: Student's t with the pooled sd (paired by seed for FAQ pairs), from scipy.stats;
- looks: the race tests after every round, at `Looks.first` .. `Looks.last` seeds a config.
  Each p-value is turned into its sequential p-value, the chance that a Pocock (constant)
  boundary at that nominal level is crossed at some planned look when nothing differs, by
  recursive numerical integration (Armitage, McPherson and Rowe) over the looks' information
  (seeds). A decision rejected at any look then keeps its 5% however often the race looks.
  Intervals are repeated confidence intervals at the same boundary (Jennison and Turnbull):
  they cover the true difference at every look at once, so stopping early does not bias them;
- better or worse: the two-sided test, sequential p Holm-adjusted over the family, < 0.05;
- equivalent: two one-sided tests (TOST) against -margin and +margin, sequential and
  Holm-adjusted likewise: equivalence is shown, never read from a large p;
- undecided: neither; "about N more seeds" is the count at which the observed difference and
  sd would decide one way or the other (no multiplicity: a rough guide).

Why Pocock and not O'Brien-Fleming: with 2 to 6 seeds the first look is a third of the
information, where O'Brien-Fleming spends almost nothing, so a clearly worse config would
wait for the last round; Pocock decides it at the first. Why not a confidence sequence: at 6
seeds or fewer its width is far above a planned design's. Why scipy and not statsmodels'
ttost_ind: the resolution floor and the pooled sd are inputs. baycomp's correlated t-test is
not used: it applies the cross-validation (Nadeau-Bengio) correction, wrong for independent
training seeds.

The default margin follows one rule a user can apply to any budget: what two retrainings of
the same config differ by 95% of the time, 1.96 * sqrt(2) * the seed sd, rounded up to a tenth
of a point. A difference smaller than that is one a retraining would undo. At the default
fidelity's seed sd of about 0.1 pp that is 0.3 pp; the report prints the pooled seed sd and the
margin the rule gives from it, for `--margin`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator

import numpy as np
from scipy import stats

from bench.store.wording import points

ALPHA = 0.05
RETRAINING_RANGE = float(stats.norm.ppf(0.975) * math.sqrt(2))  # margin / seed sd, by the rule
MARGIN = 0.003  # 0.3 pp: RETRAINING_RANGE x the default fidelity's seed sd (~0.1 pp), rounded up
BEST, BETTER, EQUIVALENT, WORSE, UNDECIDED = "best", "better", "equivalent", "worse", "undecided"
MIN_SEEDS = 2  # per side, for a test
FIRST_SEEDS, MAX_SEEDS = 2, 6  # the race's first round and its last, seeds a config
HOMOGENEITY_ALPHA = 0.05  # Bartlett p under which seed noise is not pooled
SQRT_2PI = math.sqrt(2 * math.pi)
MAX_SEEDS_ESTIMATE = 1000  # "about N more seeds" is capped here (the difference may be ~0)
METHOD = ("held-out seeds only; t tests with the seed sd pooled over the fidelity's configs "
          "(paired t for FAQ pairs), each sd at least one validation image; better/worse: "
          "two-sided, equivalent: two one-sided tests against +-margin; sequential p-values "
          "(Pocock boundary over the race's looks) Holm-adjusted over the family, 5%")


@dataclass(frozen=True)
class Looks:
    """The race's planned looks: a test after every round, at `first`, first + 1, .. `last`
    seeds a config (bench.evidence.settings.ConfirmSettings: seeds, max_seeds)."""

    first: int = FIRST_SEEDS
    last: int = MAX_SEEDS

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(self.first, max(self.first, self.last) + 1))

    def sequential_p(self, p: float, sides: int) -> float:
        """The chance, when nothing differs, that a test at nominal level `p` rejects at some
        look: what rejecting at `p` costs in error rate over the whole race."""
        if np.isnan(p) or len(self.seeds) == 1:
            return p
        nominal, overall = _boundary_table(self.seeds, sides)
        value = math.exp(np.interp(math.log(max(p, nominal[0])), np.log(nominal), np.log(overall)))
        return float(min(1.0, max(p, min(value, len(self.seeds) * p))))

    def nominal_level(self, alpha: float, sides: int) -> float:
        """The per-look level whose sequential p is `alpha` (Pocock's constant boundary)."""
        if len(self.seeds) == 1:
            return alpha
        nominal, overall = _boundary_table(self.seeds, sides)
        return float(math.exp(np.interp(math.log(alpha), np.log(overall), np.log(nominal))))


def crossing_probability(z: float, seeds: tuple[int, ...], sides: int, points: int = 321) -> float:
    """P(|Z_k| >= z at some k) (sides 2; Z_k >= z for sides 1) for a z statistic looked at after
    `seeds[k]` seeds, under no difference: recursive integration of the score's density over
    the continuation region, look by look (the score's increments are independent normals)."""
    information = np.asarray(seeds, float)
    bound = z * math.sqrt(information[0])
    spread = 9 * math.sqrt(information[-1])
    x = np.linspace(-bound if sides == 2 else -spread, bound, points)
    weights = np.full(points, x[1] - x[0])
    weights[[0, -1]] /= 2
    mass = stats.norm.pdf(x, scale=math.sqrt(information[0])) * weights
    crossed = sides * float(stats.norm.sf(z))
    for before, now in zip(information, information[1:]):
        step = math.sqrt(now - before)
        bound = z * math.sqrt(now)
        exits = stats.norm.sf((bound - x) / step)
        if sides == 2:
            exits = exits + stats.norm.cdf((-bound - x) / step)
        crossed += float(mass @ exits)
        y = np.linspace(-bound if sides == 2 else -spread, bound, points)
        weights = np.full(points, y[1] - y[0])
        weights[[0, -1]] /= 2
        kernel = np.exp(-0.5 * ((y[:, None] - x[None, :]) / step) ** 2) / (step * SQRT_2PI)
        mass = kernel @ mass * weights
        x = y
    return min(1.0, crossed)


@lru_cache(maxsize=32)
def _boundary_table(seeds: tuple[int, ...], sides: int) -> tuple[np.ndarray, np.ndarray]:
    """Nominal per-look levels and their sequential p-values, on a log grid (monotone)."""
    nominal = np.logspace(-12, math.log10(0.5), 61)
    overall = np.array([crossing_probability(float(stats.norm.isf(p / sides)), seeds, sides)
                        for p in nominal])
    overall = np.maximum.accumulate(np.clip(overall, nominal, 1.0))
    return nominal, overall


@dataclass(frozen=True)
class Noise:
    """Seed noise at one fidelity, pooled over its configs (or pairs) with 2+ seeds."""

    sd: float
    df: int
    groups: int  # configs (or pairs) pooled
    homogeneity_p: float  # Bartlett's test that the variance is the same in every group

    @property
    def pooled(self) -> bool:
        """Whether tests use it: 2+ groups whose variances do not detectably differ."""
        return self.groups >= 2 and not self.homogeneity_p < HOMOGENEITY_ALPHA

    def sentence(self, margin: float) -> str:
        """The pooled sd, its check, and the margin the rule gives from it."""
        if self.groups < 2:
            return "Seed sd: not pooled (fewer than two configs with 2+ held-out seeds)."
        check = (f"Bartlett p = {self.homogeneity_p:.2f}: "
                 + ("the variance does not detectably depend on the config, so tests use it"
                    if self.pooled else "the variance depends on the config, so each test uses "
                    "its configs' own sds (Welch)"))
        ruled = math.ceil(RETRAINING_RANGE * self.sd * 1000 - 1e-9) / 10
        return (f"Seed sd pooled over {self.groups} configs at this budget: "
                f"{self.sd * 100:.3f} pp ({self.df} degrees of freedom; {check}). The margin rule "
                f"(1.96 x sqrt 2 x seed sd, rounded up: what two retrainings differ by 95% of "
                f"the time) gives {ruled:.1f} pp here; this report uses {points(margin)}.")


def seed_noise(groups: list[np.ndarray], resolution: float) -> Noise:
    """The seed sd pooled over the groups with 2+ values (each group's sd floored at one
    `resolution` step), its degrees of freedom, and Bartlett's test of equal variances."""
    kept = [np.asarray(g, float) for g in groups if len(g) >= MIN_SEEDS]
    if not kept:
        return Noise(resolution, 0, 0, float("nan"))
    dfs = np.array([len(g) - 1 for g in kept], float)
    variances = np.array([floored_sd(g, resolution) ** 2 for g in kept])
    pooled = float(dfs @ variances / dfs.sum())
    return Noise(math.sqrt(pooled), int(dfs.sum()), len(kept), bartlett(dfs, variances))


def bartlett(dfs: np.ndarray, variances: np.ndarray) -> float:
    """Bartlett's test that groups with these degrees of freedom and (floored) variances share
    one variance, as scipy.stats.bartlett computes it from samples; scipy's own takes the
    samples and cannot floor a group whose seeds all scored the same (log 0). Brown-Forsythe
    (scipy.stats.levene) is not used: with two seeds a group its deviations are all equal."""
    if len(dfs) < 2:
        return float("nan")
    total = dfs.sum()
    statistic = (total * math.log(dfs @ variances / total) - dfs @ np.log(variances)) / (
        1 + (np.sum(1 / dfs) - 1 / total) / (3 * (len(dfs) - 1)))
    return float(stats.chi2.sf(statistic, len(dfs) - 1))


@dataclass(frozen=True)
class Comparison:
    """A config minus the config it is compared with (the best, or a pair's other side), over
    held-out seeds: the difference, its repeated 95% interval (valid at every look of the race)
    and the single-look tests."""

    difference: float
    ci_low: float
    ci_high: float
    p_different: float  # two-sided, one look, unadjusted
    p_equivalent: float  # TOST against +-margin, one look, unadjusted
    seeds: int  # the smaller side's held-out seeds (pairs, when paired)
    difference_sd: float  # sd of one seed's difference: the mean difference's se is this / sqrt(n)
    df: float = float("inf")


def _compare(difference: float, se: float, df: float, margin: float, seeds: int,
             difference_sd: float, looks: Looks) -> Comparison:
    """Student's t tests of a difference with standard error `se`."""
    t = stats.t(df)
    p_different = float(2 * t.sf(abs(difference) / se))
    p_equivalent = float(max(t.sf((difference + margin) / se), t.cdf((difference - margin) / se)))
    half = float(t.isf(looks.nominal_level(ALPHA, 2) / 2)) * se
    return Comparison(difference, difference - half, difference + half, p_different,
                      p_equivalent, seeds, difference_sd, df)


def unpaired(values: np.ndarray, compared_with: np.ndarray, margin: float, resolution: float,
             noise: Noise | None = None, looks: Looks = Looks()) -> Comparison | None:
    """Two configs' held-out seeds compared: with the pooled seed sd when `noise` is pooled,
    else Welch's; None with fewer than two a side."""
    a, b = np.asarray(values, float), np.asarray(compared_with, float)
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return None
    if noise is not None and noise.pooled:
        sd_a = sd_b = noise.sd
        se, df = noise.sd * math.sqrt(1 / len(a) + 1 / len(b)), float(noise.df)
    else:
        sd_a, sd_b = floored_sd(a, resolution), floored_sd(b, resolution)
        variance_a, variance_b = sd_a**2 / len(a), sd_b**2 / len(b)
        se = math.sqrt(variance_a + variance_b)
        df = (variance_a + variance_b) ** 2 / (variance_a**2 / (len(a) - 1)
                                               + variance_b**2 / (len(b) - 1))
    return _compare(float(a.mean() - b.mean()), se, df, margin, min(len(a), len(b)),
                    math.sqrt(sd_a**2 + sd_b**2), looks)


def paired(differences: np.ndarray, margin: float, resolution: float, noise: Noise | None = None,
           looks: Looks = Looks()) -> Comparison | None:
    """A paired comparison from per-seed differences (`noise`: of differences, pooled over the
    fidelity's pairs); None with fewer than two pairs."""
    d = np.asarray(differences, float)
    if len(d) < MIN_SEEDS:
        return None
    pooled = noise is not None and noise.pooled
    sd = noise.sd if pooled else floored_sd(d, resolution)
    df = float(noise.df) if pooled else float(len(d) - 1)
    return _compare(float(d.mean()), sd / math.sqrt(len(d)), df, margin, len(d), sd, looks)


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


def decide_family(comparisons: list[Comparison | None], margin: float,
                  looks: Looks = Looks()) -> list[dict]:
    """Each comparison's decision from its sequential p-values (over the race's `looks`),
    Holm-adjusted over the family, with the seeds it would take when undecided."""
    p_different = holm([looks.sequential_p(c.p_different, 2) if c else float("nan")
                        for c in comparisons])
    p_equivalent = holm([looks.sequential_p(c.p_equivalent, 1) if c else float("nan")
                         for c in comparisons])
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
                        "more_seeds": (seeds_to_decide(comparison, margin, looks)
                                       if decision == UNDECIDED else 0)})
    return decided


def seeds_to_decide(comparison: Comparison, margin: float, looks: Looks = Looks()) -> int:
    """About how many more held-out seeds a side would make the comparison decide, if the
    observed difference and sd held: the fewest at which the repeated interval (the looks'
    boundary, no multiplicity) would exclude zero or fit inside +-margin."""
    distance = abs(comparison.difference)
    two_sided = looks.nominal_level(ALPHA, 2) / 2
    one_sided = looks.nominal_level(ALPHA, 1)
    for seeds in range(comparison.seeds + 1, comparison.seeds + MAX_SEEDS_ESTIMATE):
        se = comparison.difference_sd / math.sqrt(seeds)
        df = comparison.df if math.isfinite(comparison.df) and comparison.df > seeds - 1 \
            else seeds - 1
        if (distance > 0 and stats.t.isf(two_sided, df) * se < distance) or \
                (distance < margin and stats.t.isf(one_sided, df) * se < margin - distance):
            return seeds - comparison.seeds
    return MAX_SEEDS_ESTIMATE


def equivalence_seeds(noise: Noise, margin: float, family: int, looks: Looks = Looks()) -> int:
    """About the seeds a config at which a config exactly equal to the best would be shown
    equivalent to it (its observed difference 0), with the pooled sd and Holm's first step
    over `family` comparisons; MAX_SEEDS_ESTIMATE when no count would."""
    level = looks.nominal_level(ALPHA / max(family, 1), 1)
    quantile = float(stats.t.isf(level, max(noise.df, 1)))
    for seeds in range(MIN_SEEDS, MAX_SEEDS_ESTIMATE):
        if quantile * noise.sd * math.sqrt(2 / seeds) < margin:
            return seeds
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
