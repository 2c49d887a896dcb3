"""The FAQ over the whole space: matched pairs, strata and importance on a synthetic table with a
known answer (kernel 3 -> 5 -> 7 helps +0.3 pp a step at stride 1 and hurts -0.3 pp at stride 2,
FC width helps +0.5 pp a step, stride 2 costs 0.2 pp, the pooling knobs do nothing), and a smoke
test on the shipped reference table."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from bench.evidence import whole_space as ws
from bench.evidence import whole_space_sentences as sentences
from bench.evidence.answers import pp
from bench.report.whole_space_plots import whole_space_plots
from bench.store.identity import KNOBS
from bench.store.reference import read_reference

GRID = {"kernel_size": [3, 5, 7], "stride": [1, 2], "pool_size": [1, 2], "pool_stride": [1, 2],
        "fc_width": [32, 64, 128]}
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
    return (0.97 + sign * 0.003 * kernel_steps + 0.005 * GRID["fc_width"].index(config["fc_width"])
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
        expected = {(a["config_id"], b["config_id"]) for a, b in itertools.permutations(records, 2)
                    if all(a[k] == b[k] for k in KNOBS if k != knob)
                    and levels.index(b[knob]) == levels.index(a[knob]) + 1}
        pairs = ws.matched_pairs(configs, knob)
        assert set(zip(pairs["low_config"], pairs["high_config"])) == expected
        assert len(pairs) == len(expected) > 0
        assert np.allclose(pairs["difference"], pairs["high_mean"] - pairs["low_mean"])
        assert (pairs["high_value"] > pairs["low_value"]).all()


def test_summary_counts_and_bootstrap_interval():
    summary = ws.summarize(np.array([0.01, 0.02, 0.03, -0.01, 0.0]))
    assert (summary["pairs"], summary["wins"], summary["losses"], summary["ties"]) == (5, 3, 1, 1)
    assert summary["mean"] == pytest.approx(0.01)
    assert -0.01 <= summary["ci_low"] < 0.01 < summary["ci_high"] <= 0.03
    assert summary == ws.summarize(np.array([0.01, 0.02, 0.03, -0.01, 0.0]))  # fixed seed
    assert math.isnan(ws.summarize(np.array([0.01]))["ci_low"])


def test_planted_interaction_both_strata_found(space):
    strata = space.strata[(space.strata["knob"] == "kernel_size")
                          & (space.strata["by"] == "stride")]
    assert len(strata) == 4  # two steps, two strides
    assert (strata["pairs"] == 12).all()  # pool size 2 x pool stride 2 x FC width 3
    for step in ((3, 5), (5, 7)):
        at = strata[(strata["low_value"] == step[0]) & (strata["high_value"] == step[1])]
        stride1, stride2 = (at[at["by_value"] == value].iloc[0] for value in (1, 2))
        assert stride1["mean"] == pytest.approx(0.003, abs=0.0005) and stride1["ci_low"] > 0
        assert stride2["mean"] == pytest.approx(-0.003, abs=0.0005) and stride2["ci_high"] < 0
        assert stride1["wins"] == stride1["pairs"] and stride2["losses"] == stride2["pairs"]
        pooled = space.steps[(space.steps["knob"] == "kernel_size")
                             & (space.steps["low_value"] == step[0])].iloc[0]
        assert pooled["ci_low"] < 0 < pooled["ci_high"]
        chosen = space.spreads[(space.spreads["knob"] == "kernel_size") & space.spreads["chosen"]
                               & (space.spreads["low_value"] == step[0])].iloc[0]
        assert chosen["by"] == "stride" and chosen["depends"]
        assert (chosen["top_value"], chosen["bottom_value"]) == (1, 2)
    assert ws.interacting_knob(space, "kernel_size") == "stride"
    assert ws.interacting_knob(space, "stride") == "kernel_size"


def test_interaction_sentences_name_both_strata_and_agree_with_them(space):
    lines = sentences.knob_sentences(space, "kernel_size")
    assert "over the whole faq space, at one epoch, 72 configs, 2 seeds each" in lines[0]
    assert "not shown" in lines[0]  # the pooled steps hold zero
    depends = [line for line in lines if "depends on conv stride" in line]
    assert len(depends) == 2
    for line, low in zip(depends, (3, 5)):
        for value in (1, 2):
            stratum = sentences.stratum(space, {"knob": "kernel_size", "low_value": low,
                                         "high_value": low + 2, "by": "stride"}, value)
            assert (f"{pp(stratum['mean'])} at conv stride {value} (95% bootstrap CI "
                    f"{pp(stratum['ci_low'])} to {pp(stratum['ci_high'])}, "
                    f"n={stratum['pairs']} pairs)") in line


def test_planted_main_effect_answered_with_its_sign_and_win_count(space):
    steps = space.steps[space.steps["knob"] == "fc_width"]
    assert list(zip(steps["low_value"], steps["high_value"])) == [(32, 64), (64, 128)]
    lines = sentences.knob_sentences(space, "fc_width")
    assert "is supported (2 neighbouring steps, 48 matched pairs)" in lines[0]
    for _, step in steps.iterrows():
        assert step["pairs"] == 24 and step["wins"] == 24 and step["losses"] == 0
        assert step["mean"] == pytest.approx(0.005, abs=0.0003) and step["ci_low"] > 0
        assert sentences.step_effect(step) == 1
        assert any(f"FC width {step['low_value']} -> {step['high_value']}: the larger value more "
                   f"accurate in 24 of 24 matched pairs" in line and pp(step["mean"]) in line
                   and "the larger value more accurate." in line for line in lines)
    stride = sentences.knob_sentences(space, "stride")[0]  # larger stride less accurate: as claimed
    assert "\"too large a stride filters out important features\" is supported" in stride


def test_claim_verdicts_follow_the_step_effects():
    assert sentences.steps_verdict([1, 1], +1) == "supported"
    assert sentences.steps_verdict([-1, -1], +1) == "contradicted"
    assert sentences.steps_verdict([-1, 0], -1) == "supported at 1 of 2 steps"
    assert sentences.steps_verdict([1, -1], +1).startswith("mixed")
    assert sentences.steps_verdict([0, 0], +1).startswith("not shown")
    assert sentences.step_effect({"ci_low": 0.001, "ci_high": 0.002, "wins": 1, "losses": 2,
                           "pairs": 3}) == 0  # the interval says more, most pairs say less


def test_importance_ranks_the_planted_knobs_above_the_null_ones(space):
    importance = space.importance
    assert set(importance) == set(KNOBS)
    assert sum(importance.values()) == pytest.approx(1.0)
    for planted_knob in ("kernel_size", "stride", "fc_width"):
        for null_knob in ("pool_size", "pool_stride"):
            assert importance[planted_knob] > importance[null_knob]
    assert "PED-ANOVA" in sentences.importance_sentence(space)


def test_plots_show_every_pair_coloured_by_the_interacting_knob(space):
    plots = {plot.title.split(":")[0]: plot for plot in whole_space_plots(space)}
    kernel = plots["Conv kernel size"].figure
    points = [trace for trace in kernel.data if trace.name.startswith("conv stride")]
    assert [trace.name for trace in points] == ["conv stride 1", "conv stride 2"]
    assert sum(len(trace.y) for trace in points) == 48
    mean = kernel.data[-1]
    steps = space.steps[space.steps["knob"] == "kernel_size"]
    assert np.allclose(mean.y, steps["mean"] * 100)
    assert np.allclose(mean.error_y.array, (steps["ci_high"] - steps["mean"]) * 100)


def test_the_shipped_reference_table_is_answered():
    if not SHIPPED.exists():
        pytest.skip("no shipped reference table")
    answered = ws.whole_space(read_reference(SHIPPED))
    assert answered.epochs == 1 and len(answered.configs) >= 2
    for knob in KNOBS:
        steps = answered.steps[answered.steps["knob"] == knob]
        assert steps["pairs"].sum() > 0, knob
        assert np.isfinite(steps["mean"]).all()
        with_interval = steps[steps["pairs"] >= 2]
        assert np.isfinite(with_interval[["ci_low", "ci_high"]].to_numpy()).all()
        assert sentences.knob_sentences(answered, knob)
    assert all(np.isfinite(v) for v in answered.importance.values())
    assert all(plot.figure is not None for plot in whole_space_plots(answered))
