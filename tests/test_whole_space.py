"""The FAQ over the whole space: matched pairs, effects, dependence and importance on a synthetic
table with a known answer (kernel 3 -> 5 -> 7 helps +0.3 pp a step at stride 1 and hurts -0.3 pp
at stride 2, FC width helps +0.2 pp a step, stride 2 costs 0.2 pp, the pooling knobs do nothing;
every config works), and the shipped reference table answered."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from bench.evidence import whole_space as ws
from bench.evidence import whole_space_sentences as sentences
from bench.evidence import working_effects as we
from bench.report import reference_answers as answers
from bench.report.whole_space_plots import whole_space_plots
from bench.store.identity import KNOBS
from bench.store.reference import read_reference

GRID = {"kernel_size": [3, 5, 7], "stride": [1, 2], "pool_size": [1, 2, 3],
        "pool_stride": [1, 2, 3], "fc_width": [32, 64, 128]}
FIDELITY = {"data": "shipped", "device_kind": "cpu", "split_seed": 0, "train_size": 55000,
            "validation_size": 5000,
            "train_settings": {"augment": False, "batch_size": 64, "epochs": 1,
                               "evaluations_per_epoch": 2, "learning_rate": 0.003,
                               "lr_schedule": "onecycle", "weight_decay": 0.0}}
NOISE = 0.0005  # 0.05 pp per seed
SHIPPED = Path(__file__).resolve().parents[1] / "results" / "reference" / "faq-cpu.jsonl"


def planted(config: dict) -> float:
    kernel_steps = GRID["kernel_size"].index(config["kernel_size"])
    sign = 1 if config["stride"] == 1 else -1
    return (0.97 + sign * 0.003 * kernel_steps + 0.002 * GRID["fc_width"].index(config["fc_width"])
            - 0.002 * (config["stride"] == 2))


def row(config: dict, seed: int, accuracy: float, fidelity: dict = FIDELITY) -> dict:
    """A reference row: an interim score above the measured one (must not count), then two
    full-validation scores, the best of them `accuracy`."""
    record = {"images_per_second": 1.0, "seconds": 1.0, "train_loss": 0.1, "validation_loss": 0.1}
    curve = [{**record, "epoch": 0.25, "interim": True, "validation_accuracy": 0.9999},
             {**record, "epoch": 0.5, "interim": False, "validation_accuracy": accuracy - 0.01},
             {**record, "epoch": 1.0, "interim": False, "validation_accuracy": accuracy}]
    network = {"channels": [32, 64], "conv_blocks": 2, "dropout": 0.0, "padding": "same",
               "pool_type": "max", **config}
    return {"config": network, "fidelity": fidelity, "seed": seed, "curve": curve, "complete": 1,
            "measurements": {"flops_per_image": 1000 * config["fc_width"], "parameters": 10},
            "source": "test", "host": "test", "recorded_at": "2026-01-01", "threads": 1}


def grid_configs(drop: float = 0.0, seed: int = 0) -> list[dict]:
    configs = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    rng = np.random.default_rng(seed)
    return [config for config in configs if rng.random() >= drop]


def synthetic_rows(configs: list[dict], seeds: int = 2) -> list[dict]:
    rng = np.random.default_rng(1)
    return [row(config, seed, planted(config) + rng.normal(0, NOISE))
            for config in configs for seed in range(seeds)]


@pytest.fixture(scope="module")
def space() -> ws.WholeSpace:
    return ws.whole_space(synthetic_rows(grid_configs()))


def test_a_config_is_its_mean_over_seeds_of_the_best_full_validation_score():
    config = grid_configs()[0]
    rows = [row(config, 0, 0.95), row(config, 1, 0.97), {**row(config, 2, 0.5), "complete": 0}]
    kept, note = ws.one_fidelity(rows)
    frame = ws.config_frame(kept)
    assert note == "" and len(frame) == 1
    assert frame.loc[0, "seeds"] == 2
    assert frame.loc[0, "mean"] == pytest.approx(0.96)  # the interim 0.9999 does not count
    assert frame.loc[0, "pooling"] == "no pooling"  # pool 1, stride 1


def test_mixed_fidelities_answer_the_one_with_most_configs_and_say_so():
    other = {**FIDELITY, "train_settings": {**FIDELITY["train_settings"], "epochs": 3}}
    configs = grid_configs()
    rows = synthetic_rows(configs, seeds=1) + [row(c, 0, 0.9, other) for c in configs[:5]]
    with pytest.raises(ValueError, match="several fidelities"):
        ws.config_frame(rows)
    answered = ws.whole_space(rows)
    assert len(answered.configs) == len(configs) and answered.epochs == 1
    assert "2 fidelities" in answered.note and "leaving out 5 rows" in answered.note


def test_pair_counts_equal_a_brute_force_enumeration_on_a_partial_table():
    configs = ws.config_frame(synthetic_rows(grid_configs(drop=0.3), seeds=1))
    records = configs.to_dict("records")
    for knob in KNOBS:
        levels = sorted(configs[knob].unique())
        expected = {(a["config_key"], b["config_key"]) for a, b in itertools.permutations(records, 2)
                    if all(a[k] == b[k] for k in KNOBS if k != knob)
                    and levels.index(b[knob]) == levels.index(a[knob]) + 1}
        pairs = ws.matched_pairs(configs, knob)
        assert set(zip(pairs["low_config"], pairs["high_config"])) == expected
        assert len(pairs) == len(expected) > 0
        assert np.allclose(pairs["difference"], pairs["high_mean"] - pairs["low_mean"])
        assert (pairs["high_value"] > pairs["low_value"]).all()


def test_planted_interaction_found_by_the_permutation_test_with_both_strata(space):
    assert len(space.working.failing) == 0  # every planted config is within 2 pp of the best
    tests = space.working.dependence
    for low in (3, 5):
        kernel = tests[(tests["knob"] == "kernel_size") & (tests["low_value"] == low)]
        assert kernel.set_index("by").loc["stride", "depends"], low
        assert not kernel.set_index("by").loc[["pool_size", "pool_stride"], "depends"].any()
        strata = space.working.strata
        at = strata[(strata["knob"] == "kernel_size") & (strata["low_value"] == low)
                    & (strata["by"] == "stride")].set_index("by_value")
        assert at.loc[1, "effect_pp"] == pytest.approx(0.3, abs=0.05)
        assert at.loc[2, "effect_pp"] == pytest.approx(-0.3, abs=0.05)
        assert (at["pairs"] == 27).all()  # pool size 3 x pool stride 3 x FC width 3
    null = tests[tests["knob"].isin(["pool_size", "pool_stride"])]
    assert not null["depends"].any()  # the pooling knobs do nothing, with nothing


def test_dependence_sentence_names_both_strata_with_their_numbers(space):
    sentence = answers.dependence_sentence(space.working)
    strata = space.working.strata
    for low in (3, 5):
        at = strata[(strata["knob"] == "kernel_size") & (strata["low_value"] == low)
                    & (strata["by"] == "stride")].set_index("by_value")
        assert (f"conv kernel size {low} -> {low + 2} depends on conv stride" in sentence)
        assert (f"{answers.signed(at.loc[1, 'effect_pp'])} pp at conv stride 1, "
                f"{answers.signed(at.loc[2, 'effect_pp'])} pp at conv stride 2") in sentence


def test_planted_main_effect_answered_with_its_sign_and_win_count(space):
    effects = space.working.effects
    steps = effects[effects["knob"] == "fc_width"]
    assert list(zip(steps["low_value"], steps["high_value"])) == [(32, 64), (64, 128)]
    for _, step in steps.iterrows():
        assert step["working_pairs"] == 54 and step["wins"] == 54 and step["losses"] == 0
        assert step["clusters"] == 54  # no other pair of the step shares its feature extractor
        assert step["effect_pp"] == pytest.approx(0.2, abs=0.03) and step["ci_low_pp"] > 0
        assert step["all_pairs_mean_pp"] == pytest.approx(step["effect_pp"], abs=0.03)
        assert we.step_direction(step) == 1
    claims = answers.claims_sentence(space.working)
    assert "FC width supported" in claims and "conv stride supported" in claims
    assert "conv kernel size not shown" in claims  # +0.3 at stride 1 and -0.3 at stride 2


def test_claim_verdicts_follow_the_step_effects():
    assert sentences.steps_verdict([1, 1], +1) == "supported"
    assert sentences.steps_verdict([-1, -1], +1) == "contradicted"
    assert sentences.steps_verdict([-1, 0], -1) == "supported at 1 of 2 steps"
    assert sentences.steps_verdict([1, -1], +1).startswith("mixed")
    assert sentences.steps_verdict([0, 0], +1).startswith("not shown")
    assert we.step_direction({"ci_low_pp": 0.1, "ci_high_pp": 0.2, "wins": 1, "losses": 2,
                              "working_pairs": 3}) == 0  # the interval says more, most pairs less


def test_importance_ranks_the_planted_knobs_above_the_null_ones(space):
    importance = space.importance
    assert set(importance) == set(KNOBS)
    assert sum(importance.values()) == pytest.approx(1.0)
    for planted_knob in ("kernel_size", "stride", "fc_width"):
        for null_knob in ("pool_size", "pool_stride"):
            assert importance[planted_knob] > importance[null_knob]
    assert "PED-ANOVA" in sentences.importance_sentence(space)


def test_plots_show_working_pairs_on_their_scale_and_pin_failing_ones_to_the_edge():
    configs = grid_configs()
    collapsed = {"kernel_size": 3, "stride": 2, "pool_size": 1, "pool_stride": 3}
    rows = [row(config, seed, 0.17 if all(config[k] == v for k, v in collapsed.items())
                else planted(config)) for config in configs for seed in range(2)]
    answered = ws.whole_space(rows)
    plots = {plot.title.split(":")[0]: plot for plot in whole_space_plots(answered)}
    kernel = plots["Conv kernel size"].figure
    working, failing, estimate = kernel.data
    assert len(failing.x) == 3 and (np.abs(failing.customdata) > 50).all()  # 3 FC widths, 3 -> 5
    assert len(working.y) + len(failing.y) == 54 * 2
    low, high = kernel.layout.yaxis.range
    assert high - low < 2  # tenths of a point show: the +-80 pp pairs do not set the scale
    assert (failing.y >= high - 0.5).all() or (failing.y <= low + 0.5).all()
    effects = answered.working.effects
    assert np.allclose(estimate.y, effects[effects["knob"] == "kernel_size"]["effect_pp"])
    assert all(note.text not in (None, "new text") for note in kernel.layout.annotations)


def test_the_shipped_reference_table_is_answered():
    if not SHIPPED.exists():
        pytest.skip("no shipped reference table")
    answered = ws.whole_space(read_reference(SHIPPED))
    assert answered.epochs == 1 and len(answered.configs) >= 2
    effects = answered.working.effects
    for knob in KNOBS:
        steps = effects[effects["knob"] == knob]
        assert steps["working_pairs"].sum() > 0, knob
        assert np.isfinite(steps[["effect_pp", "ci_low_pp", "ci_high_pp"]].to_numpy()).all()
    assert all(np.isfinite(v) for v in answered.importance.values())
    assert all(plot.figure is not None for plot in whole_space_plots(answered))
