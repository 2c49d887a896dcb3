"""How far two budgets agree: configs ranked at the search's one epoch may rank otherwise at the
twelve epochs users train at, so a decision carries the budget it was made at and the report
measures the agreement (Kendall's tau of the held-out means, with an interval and a permutation
p-value, and only over 5+ configs: under that, unrelated rankings read as agreement too often)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from bench.evidence.answers import describe
from bench.evidence.decisions import MIN_SEEDS
from bench.evidence.overfitting import FcOverfitting

RESAMPLES = 2000
PERMUTATIONS = 9999  # every pairing (an exact p-value) up to 7 configs, a random 9,999 above
MIN_CONFIGS = 5  # under five, unrelated rankings "agree" or "reverse" in 15% or more of draws
AGREEMENT_METHOD = ("Kendall's tau-b between the budgets' held-out means, over the configs with "
                    f"{MIN_SEEDS}+ held-out seeds at both ({MIN_CONFIGS}+ configs, else not "
                    f"measured); two-sided permutation p-value (exact up to 7 configs); 95% "
                    f"percentile bootstrap interval over those configs and their seeds "
                    f"({RESAMPLES:,} resamples)")


@dataclass
class Budget:
    """The evidence at one budget (fidelity): its configs ranked against its best, the one to
    use, the FAQ verdicts, each decided on that budget's held-out seeds only, and at two or more
    epochs the over-fitting claim judged on those seeds' runs paired along FC width."""

    fidelity_key: str
    epochs: float
    ranked: pd.DataFrame
    headline: list[str]
    answers: list[str]
    fc_overfitting: list[FcOverfitting] = field(default_factory=list)  # [] without an FC pair
    overfitting: list[str] = field(default_factory=list)  # the claim in words (also in answers)


def kendall_agreement(first: dict[str, np.ndarray], second: dict[str, np.ndarray],
                      resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Kendall's tau-b between the mean of each config's seeds at two budgets, and a bootstrap
    interval that resamples configs and, within each, its seeds at each budget (so seed noise in
    the means widens it), and a permutation p-value of the means' tau against no association;
    NaN with fewer than MIN_CONFIGS configs in common."""
    common = sorted(c for c in set(first) & set(second)
                    if len(first[c]) >= MIN_SEEDS and len(second[c]) >= MIN_SEEDS)
    result = {"configs": len(common), "tau": np.nan, "p": np.nan, "ci_low": np.nan,
              "ci_high": np.nan}
    if len(common) < MIN_CONFIGS:
        return result
    a = [np.asarray(first[c], float) for c in common]
    b = [np.asarray(second[c], float) for c in common]
    mean_a, mean_b = np.array([x.mean() for x in a]), np.array([y.mean() for y in b])
    result["tau"] = float(_tau_b(mean_a[None, :], mean_b[None, :])[0])
    if not np.isnan(result["tau"]):
        # one sample permuted against the other fixed: n! pairings, all of them up to 7 configs
        result["p"] = float(stats.permutation_test(
            (mean_a,), lambda x, axis: _tau_b(np.atleast_2d(x), mean_b[None, :]),
            permutation_type="pairings", vectorized=True, n_resamples=PERMUTATIONS,
            random_state=seed).pvalue)
    rng = np.random.default_rng(seed)
    # each config's mean over its seeds resampled, then configs resampled: both noises count
    means_a = np.array([rng.choice(x, (resamples, len(x))).mean(1) for x in a])
    means_b = np.array([rng.choice(y, (resamples, len(y))).mean(1) for y in b])
    picks = rng.integers(0, len(common), (resamples, len(common)))
    rows = np.arange(resamples)[:, None]
    taus = _tau_b(means_a[picks, rows], means_b[picks, rows])
    taus = taus[~np.isnan(taus)]
    if len(taus):
        result["ci_low"], result["ci_high"] = (float(v) for v in np.percentile(taus, [2.5, 97.5]))
    return result


def _tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair of x and y (rows: samples, columns: configs), as scipy's
    `kendalltau` gives it, vectorized over rows; NaN where a row is constant."""
    upper = np.triu_indices(x.shape[1], k=1)
    dx = np.sign(x[:, :, None] - x[:, None, :])[:, upper[0], upper[1]]
    dy = np.sign(y[:, :, None] - y[:, None, :])[:, upper[0], upper[1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(1) / np.sqrt((dx ** 2).sum(1) * (dy ** 2).sum(1))


def agreement_table(budgets: list[Budget], heldout: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """The first budget (the search's) against each other one: tau, interval, configs, and the
    configs whose decision against the best changed (in words, with both decisions)."""
    if len(budgets) < 2:
        return pd.DataFrame()
    main = budgets[0]
    rows = []
    for other in budgets[1:]:
        before = main.ranked.set_index("config_key")["decision"]
        after = other.ranked.set_index("config_key")["decision"]
        changed = sorted(c for c in set(before.index) & set(after.index)
                         if before[c] != after[c])
        described = main.ranked.set_index("config_key")
        rows.append({"from_epochs": main.epochs, "to_epochs": other.epochs,
                     **kendall_agreement(heldout.get(main.fidelity_key, {}),
                                         heldout.get(other.fidelity_key, {})),
                     "decisions_changed": len(changed),
                     "changed": "; ".join(f"{describe(described.loc[c])}: {before[c]} -> "
                                          f"{after[c]}" for c in changed)})
    return pd.DataFrame(rows)
