"""bench.evidence.decisions on synthetic data with planted effects: decisions on held-out seeds,
within a margin, Holm over the family, and a race that stops what is decided."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.evidence import decisions
from bench.evidence.decisions import (BETTER, EQUIVALENT, MARGIN, UNDECIDED, WORSE, decide_family,
                                      paired, race_rounds, unpaired)
from bench.evidence.settings import ConfirmSettings
from bench.evidence.statistics import config_summary, mean_interval, rank_against_best

SD = 0.001  # 0.1 pp: one seed's sd at the default fidelity
RESOLUTION = 1 / 5000  # one validation image


def draw(rng: np.random.Generator, mean: float, n: int) -> np.ndarray:
    """n seeds of a config, in whole validation images as real accuracies are."""
    return np.round(rng.normal(mean, SD, n) / RESOLUTION) * RESOLUTION


def measurement_rows(values: dict[str, tuple[float, np.ndarray]]) -> pd.DataFrame:
    """Measurements as bench.evidence.measurements gives them: per config one selection seed
    (the search's) and its held-out seeds; FLOPs rise with the config's number."""
    rows = []
    for number, (name, (selected, heldout)) in enumerate(values.items()):
        config = {"kernel_size": 3, "stride": 1, "pool_size": 2, "pool_stride": 2,
                  "fc_width": 32 * (number + 1)}
        for seed, (value, selection) in enumerate([(selected, True)]
                                                  + [(v, False) for v in heldout]):
            rows.append({"fidelity_id": "f", "config_id": name, "seed": seed,
                         "validation_accuracy": float(value), "selection": selection,
                         "loss_gap": 0.0, "queries": 1, "study": "s", "trial": seed,
                         "config": config, **config, "parameters": 1000,
                         "flops_per_image": 1e6 * (number + 1), "latency_ms_batch1": 1.0,
                         "train_images_per_second": 1000.0, "training_seconds": 1.0,
                         "train_images": 1000, "epochs": 1, "resolution": RESOLUTION})
    return pd.DataFrame(rows)


def ranked(values: dict[str, tuple[float, np.ndarray]], margin: float = MARGIN) -> pd.DataFrame:
    measured = measurement_rows(values)
    heldout = {name: seeds for name, (_, seeds) in values.items()}
    return rank_against_best(config_summary(measured), heldout, margin)


def test_ten_equal_configs_best_is_unbiased_and_almost_never_called_different():
    """The best is picked on the search's seed, so its held-out mean is not inflated; Holm keeps
    'better' or 'worse' for equal configs to at most 5% of studies."""
    rng = np.random.default_rng(21)
    errors, false_calls, studies = [], 0, 200
    for _ in range(studies):
        values = {f"c{i}": (draw(rng, 0.988, 1)[0], draw(rng, 0.988, 5)) for i in range(10)}
        frame = ranked(values)
        best = frame[frame["is_best"]].iloc[0]
        errors.append(best["mean"] - 0.988)
        false_calls += bool(frame["decision"].isin([BETTER, WORSE]).any())
        # the search's value of the best is inflated (best of ten single seeds): never the mean
        assert best["selection_value"] >= frame["selection_value"].max() - 1e-12
    standard_error = np.std(errors, ddof=1) / np.sqrt(studies)
    assert abs(np.mean(errors)) < 2 * standard_error + 1e-5
    assert false_calls / studies <= 0.05


def test_a_config_0_3_pp_worse_is_decided_worse_in_90_percent_of_races():
    rng = np.random.default_rng(3)
    defaults = ConfirmSettings()
    worse_calls = 0
    for _ in range(200):
        seeds = {"best": draw(rng, 0.988, defaults.max_seeds),
                 "worse": draw(rng, 0.985, defaults.max_seeds)}
        measured = {"best": 0, "worse": 0}

        def open_configs() -> set[str]:
            comparison = unpaired(seeds["worse"][:measured["worse"]],
                                  seeds["best"][:measured["best"]], MARGIN, RESOLUTION)
            decided = decide_family([comparison], MARGIN)[0]["decision"]
            return {"best", "worse"} if decided == UNDECIDED else set()

        for wanted in race_rounds(["best", "worse"], defaults.seeds, defaults.max_seeds,
                                  open_configs):
            measured.update(wanted)
        comparison = unpaired(seeds["worse"][:measured["worse"]], seeds["best"][:measured["best"]],
                              MARGIN, RESOLUTION)
        worse_calls += decide_family([comparison], MARGIN)[0]["decision"] == WORSE
    assert worse_calls / 200 >= 0.90


def test_a_race_stops_decided_configs_and_gives_seeds_only_to_open_ones():
    opened = [{"a", "b"}, {"b"}, set()]
    rounds = list(race_rounds(["a", "b", "c"], 2, 6, lambda: opened.pop(0)))
    assert rounds == [{"a": 2, "b": 2, "c": 2}, {"a": 3, "b": 3, "c": 2},
                      {"a": 3, "b": 4, "c": 2}]
    capped = list(race_rounds(["a"], 2, 3, lambda: {"a"}))
    assert capped == [{"a": 2}, {"a": 3}]  # the budget ends the race


@pytest.mark.parametrize("seeds", [20])
def test_two_equal_configs_are_decided_equivalent_at_20_seeds(seeds):
    """Equivalence within +-0.1 pp at seed sd 0.1 pp takes about 20 held-out seeds a config:
    decided so in at least 80% of studies there (and never 'equivalent' for a 0.3 pp gap)."""
    rng = np.random.default_rng(5)
    equivalent = sum(decide_family([unpaired(draw(rng, 0.988, seeds), draw(rng, 0.988, seeds),
                                              MARGIN, RESOLUTION)], MARGIN)[0]["decision"]
                     == EQUIVALENT for _ in range(200))
    assert equivalent / 200 >= 0.80
    far = sum(decide_family([unpaired(draw(rng, 0.985, seeds), draw(rng, 0.988, seeds),
                                      MARGIN, RESOLUTION)], MARGIN)[0]["decision"] == EQUIVALENT
              for _ in range(200))
    assert far == 0


def test_identical_values_never_give_a_zero_width_interval_or_p_zero():
    same = np.full(3, 0.988)
    comparison = unpaired(same, same, MARGIN, RESOLUTION)
    assert comparison.ci_high - comparison.ci_low > 0 and comparison.p_different == 1.0
    shifted = unpaired(same - RESOLUTION, same, MARGIN, RESOLUTION)
    assert shifted.p_different > 0 and shifted.ci_low < shifted.difference < shifted.ci_high
    constant_pairs = paired(np.full(2, 2 * RESOLUTION), MARGIN, RESOLUTION)
    assert constant_pairs.ci_high > constant_pairs.ci_low and constant_pairs.p_different > 0
    low, high = mean_interval(same, RESOLUTION)
    assert low < 0.988 < high


def test_family_wise_error_over_the_faq_family_stays_under_5_percent():
    """Ten FAQ pairs with no effect, decided as one family: any 'better' or 'worse' is an error."""
    rng = np.random.default_rng(8)
    studies, with_error = 400, 0
    for _ in range(studies):
        family = [paired(draw(rng, 0.988, 4) - draw(rng, 0.988, 4), MARGIN, RESOLUTION)
                  for _ in range(10)]
        with_error += any(d["decision"] in (BETTER, WORSE) for d in decide_family(family, MARGIN))
    assert with_error / studies < 0.05


def test_an_undecided_comparison_says_about_how_many_seeds_would_decide_it():
    rng = np.random.default_rng(1)
    comparison = unpaired(draw(rng, 0.9865, 2), draw(rng, 0.988, 2), MARGIN, RESOLUTION)
    (decided,) = decide_family([comparison], MARGIN)
    if decided["decision"] == UNDECIDED:
        assert 1 <= decided["more_seeds"] <= decisions.MAX_SEEDS_ESTIMATE
    assert decisions.holm([0.01, 0.04, float("nan")])[:2] == [0.02, 0.04]


def test_the_one_to_use_is_the_cheapest_shown_equivalent_never_one_merely_not_rejected():
    rng = np.random.default_rng(2)
    values = {"best": (0.990, draw(rng, 0.988, 20)), "cheap_equal": (0.987, draw(rng, 0.988, 20))}
    values = {"cheap_equal": values["cheap_equal"], "best": values["best"]}  # cheaper first
    frame = ranked(values).set_index("config_id")
    assert frame.loc["best", "is_best"]  # picked by the search's value
    assert frame.loc["cheap_equal", "decision"] == EQUIVALENT
    assert frame.loc["cheap_equal", "recommended"] and not frame.loc["best", "recommended"]
    few = ranked({"cheap_worse": (0.987, draw(rng, 0.986, 3)), "best": (0.990, draw(rng, 0.988, 3))})
    few = few.set_index("config_id")
    assert few.loc["cheap_worse", "decision"] != EQUIVALENT
    assert few.loc["best", "recommended"]  # 0.2 pp worse is never the one to use at 3 seeds
