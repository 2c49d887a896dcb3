"""Effects among working networks on synthetic tables with a known answer: the Hodges-Lehmann
estimate recovers a planted 0.3 pp step when 15% of the pairs hold a collapsed config (+-60 pp),
the cluster bootstrap is the bootstrap of explicit resamples, and the permutation test of
dependence keeps its error rate under no interaction and finds a planted one."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from bench.evidence import whole_space as ws
from bench.evidence import working_effects as we
from bench.store.identity import KNOBS

CELLS = {"stride": [1, 2], "pool_size": [1, 2, 3], "pool_stride": [1, 2, 3]}
FC_WIDTHS = [32, 64, 128, 256, 512]


def config_table(accuracy, kernels=(3, 5)) -> pd.DataFrame:
    """One row per config (the columns whole_space.config_frame makes), its mean from
    `accuracy(config, cell_index)`."""
    rows = []
    cells = list(itertools.product(*CELLS.values()))
    for cell_index, cell in enumerate(cells):
        for kernel, fc in itertools.product(kernels, FC_WIDTHS):
            config = {"kernel_size": kernel, **dict(zip(CELLS, cell)), "fc_width": fc}
            rows.append({"config_key": "-".join(map(str, config.values())), **config,
                         we.POOLING: we.pooling_kind(config["pool_size"], config["pool_stride"]),
                         "rest": "{}", "seeds": 3, "mean": accuracy(config, cell_index)})
    return pd.DataFrame(rows)


def effects_of(configs: pd.DataFrame) -> we.WorkingEffects:
    pairs = pd.concat([ws.matched_pairs(configs, knob) for knob in KNOBS], ignore_index=True)
    return we.working_effects(configs, pairs.astype({k: "Int64" for k in KNOBS}), epochs=1.0)


def test_pooling_kinds_are_named_by_window_and_stride():
    assert we.pooling_kind(1, 1) == "no pooling"
    assert we.pooling_kind(1, 3) == "subsampling"
    assert we.pooling_kind(2, 2) == "pooling"


def test_hodges_lehmann_is_the_median_of_walsh_averages():
    values = np.array([0.0, 1.0, 10.0])  # Walsh: 0, .5, 5, 1, 5.5, 10
    assert we.hodges_lehmann(values) == pytest.approx(3.0)
    assert we.hodges_lehmann(np.array([[0.0, 1.0, 10.0], [1.0, 1.0, 1.0]])) == pytest.approx(
        [3.0, 1.0])


def test_cluster_bootstrap_equals_the_bootstrap_of_explicit_cluster_resamples():
    rng = np.random.default_rng(3)
    differences, clusters = rng.normal(size=23), rng.integers(0, 7, 23)
    low, high = we.cluster_interval(differences, clusters, np.random.default_rng(5), 400)
    members = np.unique(clusters, return_inverse=True)[1]
    drawn = np.random.default_rng(5).integers(0, members.max() + 1, (400, members.max() + 1))
    explicit = [we.hodges_lehmann(differences[np.concatenate(
        [np.flatnonzero(members == c) for c in row])]) for row in drawn]
    assert (low, high) == pytest.approx(tuple(np.percentile(explicit, [2.5, 97.5])))
    assert np.isnan(we.cluster_interval(differences, np.zeros(23, int),
                                        np.random.default_rng(0))[0])  # one cluster: no interval


def test_planted_effect_among_working_configs_survives_collapsed_pairs():
    """Kernel 3 -> 5 adds 0.3 pp; 15% of the pairs hold a config that collapses (35%), so their
    differences are +-60 pp: the estimate among working pairs is the 0.3 pp, the mean is not."""
    rng = np.random.default_rng(7)
    collapsed = set(rng.choice(len(FC_WIDTHS) * 18, size=14, replace=False).tolist())  # 14 of 90
    low_or_high = {index: int(rng.integers(0, 2)) for index in collapsed}
    noise = {}

    def accuracy(config: dict, cell: int) -> float:
        pair = cell * len(FC_WIDTHS) + FC_WIDTHS.index(config["fc_width"])
        side = int(config["kernel_size"] == 5)
        if low_or_high.get(pair) == side:
            return 0.35 + rng.normal(0, 0.02)
        cell_effect = noise.setdefault(cell, rng.normal(0, 0.002))
        return 0.98 + cell_effect + 0.003 * side + rng.normal(0, 0.0007)

    answer = effects_of(config_table(accuracy))
    kernel = answer.effects[answer.effects["knob"] == "kernel_size"].iloc[0]
    assert kernel["all_pairs"] == 90 and kernel["failing_pairs"] == 14
    assert kernel["working_pairs"] == 76 and kernel["clusters"] == 18
    assert kernel["effect_pp"] == pytest.approx(0.3, abs=0.06)
    assert kernel["ci_low_pp"] < 0.3 < kernel["ci_high_pp"] and kernel["ci_low_pp"] > 0
    assert abs(kernel["all_pairs_mean_pp"] - 0.3) > 2  # the mean is pulled by the collapsed ones
    assert we.step_direction(kernel) == 1
    assert len(answer.failing) == 14 and (answer.failing["mean"] < 0.5).all()


def null_steps(rng: np.random.Generator, tables: int, interaction: float = 0.0):
    """Steps like the reference table's: 13 clusters of 5 FC widths, a random effect per cluster
    and a label per cluster (3 values) and per pair (its FC width), no interaction unless given."""
    clusters = np.repeat(np.arange(13), 5)
    cluster_label = np.arange(13) % 3
    for _ in range(tables):
        cell = rng.normal(0, 0.3, 13)[clusters]
        differences = 0.5 + cell + rng.normal(0, 0.1, len(clusters))
        differences += interaction * (cluster_label[clusters] == 0)
        yield differences, cluster_label[clusters], np.tile(np.arange(5), 13), clusters


def test_no_interaction_gives_at_most_five_percent_false_depends():
    """800 tables: 5% would show about 40 rejections (sd 6), 10% about 80."""
    rng = np.random.default_rng(11)
    by_cell, by_width = [], []
    for differences, cells, widths, clusters in null_steps(rng, 800):
        by_cell.append(we.interaction_p(differences, cells, clusters, rng, permutations=199))
        by_width.append(we.interaction_p(differences, widths, clusters, rng, permutations=199))
    for p in (by_cell, by_width):
        assert np.mean(np.array(p) <= 0.05) <= 0.07


def test_a_permutation_of_single_pairs_would_say_depends_too_often():
    """Why clusters are permuted whole: pairs of one cell share its effect, so shuffling labels
    pair by pair calls the cells' spread an interaction."""
    rng = np.random.default_rng(12)
    rejected = []
    for differences, cells, _, _ in null_steps(rng, 200):
        singletons = np.arange(len(differences))  # every pair its own cluster
        rejected.append(we.interaction_p(differences, cells, singletons, rng, 199) <= 0.05)
    assert np.mean(rejected) > 0.3


def test_a_planted_interaction_is_found():
    rng = np.random.default_rng(13)
    found = [we.interaction_p(d, cells, clusters, rng, permutations=199) <= 0.05
             for d, cells, _, clusters in null_steps(rng, 100, interaction=1.0)]
    assert np.mean(found) >= 0.9


def test_holm_over_the_table_names_a_planted_interaction_and_nothing_else():
    """Kernel 3 -> 5 adds 0.6 pp with pooling and nothing without: the one dependence found."""
    rng = np.random.default_rng(17)

    def accuracy(config: dict, cell: int) -> float:
        gain = 0.006 if config["pool_size"] > 1 and config["kernel_size"] == 5 else 0.0
        return 0.98 + gain + rng.normal(0, 0.0005)

    answer = effects_of(config_table(accuracy))
    depends = answer.dependence[answer.dependence["depends"]]
    assert len(depends) >= 1
    assert set(depends["knob"]) == {"kernel_size"}
    assert set(depends["by"]) <= {"pool_size", we.POOLING}
    strata = answer.strata[(answer.strata["knob"] == "kernel_size")
                           & (answer.strata["by"] == "pool_size")].set_index("by_value")
    assert strata.loc[1, "effect_pp"] == pytest.approx(0.0, abs=0.1)
    assert strata.loc[2, "effect_pp"] == pytest.approx(0.6, abs=0.1)
