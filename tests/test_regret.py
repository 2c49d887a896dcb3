"""bench/benchmark/regret.py on hand-made frames with a known answer (its numbers on whole
compare groups are tested with the report, in tests/test_report_benchmark.py)."""

from __future__ import annotations

import pandas as pd
from benchmark_studies import GROUP

from bench.benchmark import regret


def test_a_dominant_combination_ranks_first_throughout_and_ties_share_a_rank():
    def row(sampler, pruner, trials, mean):
        return {"group": GROUP, "sampler": sampler, "pruner": pruner, "trials_finished": trials,
                "combination": regret.combination_name(sampler, pruner),
                "best_validation_accuracy_mean": mean}
    by_trials = pd.DataFrame(
        [row("tpe", "none", n, 0.990 + n / 1000) for n in (1, 2, 3)]
        + [row("random", "none", n, 0.980 + n / 1000) for n in (1, 2)]  # ran out after 2
        + [row("gp", "none", n, 0.980 + (n == 3) / 500) for n in (2, 3)])  # nothing at 1
    ranks = regret.rank_over_trials(by_trials).set_index(["combination", "trials_finished"])
    assert list(ranks.loc["TPE without pruning", "rank"]) == [1, 1, 1]
    # after 2 trials random (98.20) beats GP (98.00); after 3 random keeps 98.20, GP has 98.20
    assert list(ranks.loc["random without pruning", "rank"]) == [2, 2, 2.5]
    assert list(ranks.loc["GP without pruning", "rank"]) == [3, 2.5]
    assert list(ranks["combinations_ranked"]) == [2, 3, 3, 2, 3, 3, 3, 3]
