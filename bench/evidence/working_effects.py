"""Each knob step's effect among networks a user would train, from the matched pairs of
bench.evidence.whole_space: the Hodges-Lehmann estimate of the paired differences among pairs whose
two configs both work, with a bootstrap interval over clusters of near-identical configs, and a
permutation test (Holm-adjusted over every step and knob) for "the effect depends on another knob".
Pairs with a failing config are counted apart, as what they are, never averaged into an effect.

A config works at a budget when its mean is within WORKING_GAP of the best config's mean at that
budget (the table holds one budget), so the rule carries over to a table at ten epochs. Configs
that differ only in FC width share their whole feature extractor and are near-copies: the pairs of
a step that share every knob but the stepped one and FC width are one cluster, resampled and
permuted whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.evidence.decisions import holm
from bench.store.identity import KNOBS
from mnist_cnn.model import IMAGE_SIZE, CNNConfig

WORKING_GAP = 0.02  # a config works within 2 pp of the best config's mean at its budget
CONFIDENCE = 0.95
RESAMPLES = 1999  # cluster bootstrap resamples
PERMUTATIONS = 1999  # so that a Holm-adjusted p over ~30 tests can fall below 0.05
ALPHA = 0.05
RANDOM_SEED = 0
POOLING = "pooling"  # a config's pooling kind (pooling_kind), a column of the config frame
NEAR_COPY_KNOB = "fc_width"  # configs differing only in it form one cluster
MIN_STRATUM_PAIRS = 3  # a stratum of working pairs smaller than this is not tested
WORKING_RULE = (f"a config works when its mean is within {WORKING_GAP * 100:g} pp of the best "
                "config's mean at the same budget; a pair counts when both its configs work")
METHOD = ("Hodges-Lehmann estimate (median of the Walsh averages) of the paired differences, "
          f"larger value minus smaller, among working pairs; {CONFIDENCE:.0%} percentile "
          f"bootstrap interval resampling clusters of near-identical configs (pairs that differ "
          f"only in FC width; {RESAMPLES:,} resamples, numpy, seed {RANDOM_SEED})")
INTERACTION_METHOD = ("an effect depends on another knob (or the pooling kind) when a "
                      "permutation test of the spread of its strata means (between-strata sum of "
                      f"squares, {PERMUTATIONS:,} permutations of the knob's values over whole "
                      "clusters, or within clusters for FC width) rejects no interaction at "
                      f"{ALPHA:g} after Holm's adjustment over every step and knob")
EFFECT_COLUMNS = ["knob", "low_value", "high_value", "epochs", "effect_pp", "ci_low_pp",
                  "ci_high_pp", "working_pairs", "clusters", "wins", "losses", "ties",
                  "failing_pairs", "all_pairs", "all_pairs_mean_pp"]


def pooling_kind(pool_size: int, pool_stride: int) -> str:
    """'no pooling' (window 1, stride 1), 'subsampling' (window 1, stride > 1) or 'pooling'."""
    if pool_size > 1:
        return "pooling"
    return "no pooling" if pool_stride == 1 else "subsampling"


def working(configs: pd.DataFrame) -> pd.Series:
    """Whether each config's mean is within WORKING_GAP of the best mean (one budget)."""
    return configs["mean"] >= configs["mean"].max() - WORKING_GAP


def cluster_keys(pairs: pd.DataFrame, knob: str) -> np.ndarray:
    """One integer per pair: pairs of `knob` sharing every knob but it and FC width."""
    shared = [k for k in KNOBS if k not in (knob, NEAR_COPY_KNOB)]
    return pairs.groupby(shared, sort=True).ngroup().to_numpy()


# ---------------------------------------------------------------- estimate and interval

def hodges_lehmann(differences: np.ndarray) -> np.ndarray | float:
    """The median of the Walsh averages (d_i + d_j) / 2, i <= j; over the last axis."""
    differences = np.asarray(differences, float)
    rows, columns = np.triu_indices(differences.shape[-1])
    walsh = (differences[..., rows] + differences[..., columns]) / 2
    return np.median(walsh, axis=-1)


def cluster_interval(differences: np.ndarray, clusters: np.ndarray,
                     rng: np.random.Generator, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of the Hodges-Lehmann estimate, resampling whole clusters
    (NaN under two clusters). A resample is a multiplicity per pair, so its estimate is the
    weighted median of the original Walsh averages: no resample is built."""
    labels, members = np.unique(clusters, return_inverse=True)
    if len(labels) < 2:
        return np.nan, np.nan
    drawn = rng.integers(0, len(labels), (resamples, len(labels)))
    counts = (drawn[:, :, None] == np.arange(len(labels))).sum(axis=1)  # resamples x clusters
    multiplicity = counts[:, members]  # resamples x pairs
    rows, columns = np.triu_indices(len(differences))
    walsh = (differences[rows] + differences[columns]) / 2
    weights = multiplicity[:, rows] * multiplicity[:, columns]
    diagonal = rows == columns  # a pair drawn m times has m (m + 1) / 2 averages with itself
    weights[:, diagonal] = (multiplicity * (multiplicity + 1) // 2)[:, rows[diagonal]]
    order = np.argsort(walsh)
    cumulative = np.cumsum(weights[:, order], axis=1)
    total = cumulative[:, -1:]
    below = np.argmax(cumulative > (total - 1) // 2, axis=1)  # the two middle ranks
    above = np.argmax(cumulative > total // 2, axis=1)
    estimates = (walsh[order][below] + walsh[order][above]) / 2
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return float(low), float(high)


# ---------------------------------------------------------------- interaction test

def between_strata(differences: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sum over strata of n * (stratum mean - grand mean)^2, per row of `labels` (integer codes
    0..L-1)."""
    labels = np.atleast_2d(labels)
    total = differences.sum()
    statistic = -total ** 2 / len(differences)
    for level in range(int(labels.max()) + 1):
        mask = labels == level
        counts = mask.sum(axis=1)
        sums = mask @ differences
        statistic = statistic + np.divide(sums ** 2, counts, out=np.zeros_like(sums),
                                          where=counts > 0)
    return statistic


def permuted_labels(labels: np.ndarray, clusters: np.ndarray, rng: np.random.Generator,
                    permutations: int) -> np.ndarray:
    """Labels shuffled `permutations` times: whole clusters' labels among clusters when each
    cluster has one label, else within clusters (rows of a permutations x pairs array)."""
    order = np.argsort(clusters, kind="stable")
    sorted_labels, sorted_clusters = labels[order], clusters[order]
    first = np.unique(sorted_clusters, return_index=True)[1]
    per_cluster = np.split(sorted_labels, first[1:])
    if all((part == part[0]).all() for part in per_cluster):
        cluster_labels = sorted_labels[first]
        _, members = np.unique(sorted_clusters, return_inverse=True)
        shuffled = rng.permuted(np.tile(cluster_labels, (permutations, 1)), axis=1)
        result = shuffled[:, members]
    else:
        keys = sorted_clusters + rng.random((permutations, len(labels)))
        result = sorted_labels[np.argsort(keys, axis=1)]
    unsorted = np.empty_like(result)
    unsorted[:, order] = result
    return unsorted


def interaction_p(differences: np.ndarray, labels: np.ndarray, clusters: np.ndarray,
                  rng: np.random.Generator, permutations: int = PERMUTATIONS) -> float:
    """The permutation p-value of no interaction: how often shuffled labels part the strata
    at least as much as the observed ones ((1 + count) / (1 + permutations))."""
    labels = np.unique(labels, return_inverse=True)[1]
    observed = between_strata(differences, labels)[0]
    shuffled = between_strata(differences, permuted_labels(labels, clusters, rng, permutations))
    return float((1 + (shuffled >= observed - 1e-12 * abs(observed)).sum()) / (1 + permutations))


# ---------------------------------------------------------------- all steps

@dataclass(frozen=True)
class WorkingEffects:
    """The effects among working networks, the tests of dependence, and the failing configs."""

    effects: pd.DataFrame  # EFFECT_COLUMNS, one row per step, in pp
    dependence: pd.DataFrame  # per (knob, step, by): p, p_holm, depends
    strata: pd.DataFrame  # per (knob, step, by, by_value): HL effect among working pairs, pp
    failing: pd.DataFrame  # the failing configs, worst first
    best_mean: float
    epochs: float


def stratifiers(knob: str) -> list[str]:
    """What may change a knob's effect: every other knob, and the pooling kind for knobs that
    are not pooling knobs."""
    return [k for k in KNOBS if k != knob] + ([] if knob.startswith("pool_") else [POOLING])


def working_effects(configs: pd.DataFrame, pairs: pd.DataFrame,
                    epochs: float) -> WorkingEffects:
    """Every step's effect among working pairs, its tests of dependence, and the failures."""
    rng = np.random.default_rng(RANDOM_SEED)
    works = dict(zip(configs["config_key"], working(configs)))
    pairs = pairs.assign(
        working=pairs["low_config"].map(works) & pairs["high_config"].map(works))
    effects, tests, strata = [], [], []
    for (knob, low, high), group in pairs.groupby(["knob", "low_value", "high_value"], sort=False):
        good = group[group["working"]]
        clusters = cluster_keys(good, knob) if len(good) else np.array([], int)
        differences = good["difference"].to_numpy()
        effects.append(_effect(knob, low, high, epochs, group, differences, clusters, rng))
        for by in stratifiers(knob):
            if len(good) < 2 * MIN_STRATUM_PAIRS:
                continue
            labels = good[by].astype(str).to_numpy()
            values, counts = np.unique(labels, return_counts=True)
            kept = np.isin(labels, values[counts >= MIN_STRATUM_PAIRS])
            if (counts >= MIN_STRATUM_PAIRS).sum() < 2:
                continue
            tests.append({"knob": knob, "low_value": low, "high_value": high, "by": by,
                          "p": interaction_p(differences[kept], labels[kept], clusters[kept],
                                             rng)})
            for value, stratum in good[kept].groupby(by, sort=True):
                strata.append({"knob": knob, "low_value": low, "high_value": high, "by": by,
                               "by_value": value, "pairs": len(stratum),
                               "effect_pp": float(hodges_lehmann(stratum["difference"])) * 100})
    dependence = pd.DataFrame(tests, columns=["knob", "low_value", "high_value", "by", "p"])
    dependence["p_holm"] = holm(dependence["p"].tolist())
    dependence["depends"] = dependence["p_holm"] < ALPHA
    flagged = ~working(configs)
    failing = configs[flagged].sort_values("mean", ignore_index=True)
    return WorkingEffects(
        effects=pd.DataFrame(effects, columns=EFFECT_COLUMNS), dependence=dependence,
        strata=pd.DataFrame(strata, columns=["knob", "low_value", "high_value", "by", "by_value",
                                             "pairs", "effect_pp"]),
        failing=failing,
        best_mean=float(configs["mean"].max()), epochs=epochs)


def _effect(knob: str, low, high, epochs: float, group: pd.DataFrame, differences: np.ndarray,
            clusters: np.ndarray, rng: np.random.Generator) -> dict:
    estimate = float(hodges_lehmann(differences)) if len(differences) else np.nan
    ci_low, ci_high = cluster_interval(differences, clusters, rng)
    return {"knob": knob, "low_value": low, "high_value": high, "epochs": epochs,
            "effect_pp": estimate * 100, "ci_low_pp": ci_low * 100, "ci_high_pp": ci_high * 100,
            "working_pairs": len(differences), "clusters": len(np.unique(clusters)),
            "wins": int((differences > 0).sum()), "losses": int((differences < 0).sum()),
            "ties": int((differences == 0).sum()),
            "failing_pairs": len(group) - len(differences), "all_pairs": len(group),
            "all_pairs_mean_pp": float(group["difference"].mean()) * 100}


def step_direction(effect: pd.Series | dict) -> int:
    """+1 when the larger value is more accurate among working networks (interval above zero
    and most working pairs won), -1 when less (below zero, most lost), 0 when neither."""
    if effect["ci_low_pp"] > 0 and effect["wins"] > effect["working_pairs"] / 2:
        return 1
    if effect["ci_high_pp"] < 0 and effect["losses"] > effect["working_pairs"] / 2:
        return -1
    return 0


def pixels_read(config: CNNConfig) -> float:
    """The share of the image's pixels the network's output depends on at all: a stride larger
    than the kernel, or subsampling, skips pixels that no later layer can recover."""
    sizes = [IMAGE_SIZE]
    for _ in range(config.conv_blocks):
        conv = (sizes[-1] + 2 * config.conv_padding - config.kernel_size) // config.stride + 1
        sizes.append((conv - config.pool_size) // config.effective_pool_stride + 1)
    used = set(range(sizes[-1]))
    for size in reversed(sizes[:-1]):  # back through each block: its pooling, then its conv
        pooled = {o * config.effective_pool_stride + j for o in used
                  for j in range(config.pool_size)}
        used = {c * config.stride - config.conv_padding + j for c in pooled
                for j in range(config.kernel_size)} & set(range(size))
    return (len(used) / IMAGE_SIZE) ** 2
