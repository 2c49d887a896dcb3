"""The reference answers as a reader takes them home: the README's block is exactly what the code
writes from the shipped table, every direction a sentence states is the direction of its numbers,
the failing configs are said as what they are, and the best configs carry their seeds' interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.evidence import whole_space as ws
from bench.evidence import working_effects as we
from bench.report import reference_answers as answers
from bench.store.curves import curve_value
from bench.store.identity import measurement_keys
from bench.store.reference import read_reference
from mnist_cnn.model import CNNConfig

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "results" / "reference" / "faq-cpu.jsonl"


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED.exists():
        pytest.skip("no shipped reference table")
    space = ws.whole_space(read_reference(SHIPPED))
    return space, space.working


def test_the_readme_block_is_what_report_writes_from_the_shipped_table(shipped):
    readme = (ROOT / "README.md").read_text()
    assert readme.count(answers.START) == 1 and readme.count(answers.END) == 1
    quoted = readme[readme.index(answers.START):readme.index(answers.END) + len(answers.END)]
    assert quoted + "\n" == answers.answers_markdown(shipped[0]), (
        "the README's reference block differs from the code's: run `mnist-bench report` and "
        "paste reference_faq_cpu_answers.md between the markers")


def test_every_stated_effect_is_among_working_pairs_and_no_all_pairs_mean_leads(shipped):
    space, effects = shipped
    table = answers.answer_table(effects)
    assert len(table) == space.pairs.groupby(["knob", "low_value", "high_value"]).ngroups
    for (_, row), (_, effect) in zip(table.iterrows(), effects.effects.iterrows()):
        assert row["ci_low_pp"] <= row["effect_pp"] <= row["ci_high_pp"]
        assert row["pairs_won"] == f"{effect['wins']} of {effect['working_pairs']}"
        assert effect["working_pairs"] + effect["failing_pairs"] == effect["all_pairs"]
        verdict = answers.DIRECTION_WORDS[we.step_direction(effect)]
        assert row["verdict"] == verdict
        if verdict == "larger more accurate":
            assert row["ci_low_pp"] > 0
        if verdict == "larger less accurate":
            assert row["ci_high_pp"] < 0
    markdown = answers.answers_markdown(space)
    for mean in table["all_pairs_mean_pp"]:  # the mean of all pairs is the last column only
        assert f"| {answers.signed(mean)} |\n" in markdown


def effects_frame(values: list[float]) -> we.WorkingEffects:
    frame = pd.DataFrame({"knob": "fc_width", "effect_pp": values})
    empty = pd.DataFrame()
    return we.WorkingEffects(frame, empty, empty, empty, best_mean=0.99, epochs=1.0)


@pytest.mark.parametrize("values, trend", [
    ([0.3, 0.2, 0.1], "shrinks with each step"),
    ([0.1, 0.2, 0.3], "grows with each step"),
    ([0.08, 0.10, 0.03, 0.04], "neither shrinks nor grows with each step"),
    ([0.12, 0.12, 0.05], "neither shrinks nor grows with each step")])
def test_the_trend_sentence_says_only_what_the_steps_do(values, trend):
    assert answers.trend_sentence(effects_frame(values)).endswith(f"the effect {trend}.")


def test_pixels_read_says_how_much_of_the_image_a_network_can_see():
    """Kernel 3 with stride 2 then subsampling by 3 reads 5 of 28 pixels a row in block 1."""
    assert we.pixels_read(CNNConfig(kernel_size=3, stride=2, pool_size=1,
                                    pool_stride=3)) == pytest.approx((5 / 28) ** 2)
    assert we.pixels_read(CNNConfig(kernel_size=3, stride=2, pool_size=1,
                                    pool_stride=2)) == pytest.approx(0.25)
    assert we.pixels_read(CNNConfig(kernel_size=3, stride=1, pool_size=2, pool_stride=2)) == 1


def test_failing_configs_are_said_as_what_they_are(shipped):
    space, effects = shipped
    groups = answers.failing_groups(space)
    assert groups["configs"].sum() == len(effects.failing)
    assert (groups["highest_accuracy"] < effects.best_mean - we.WORKING_GAP).all()
    worst = groups.iloc[0]
    sentence = answers.failing_sentence(space)
    assert (f"{worst['network']} reads {worst['pixels_read_fraction']:.0%} of the pixels"
            in sentence)
    assert "subsampling" in worst["network"]  # window 1, stride > 1: not "no pooling"


def test_best_configs_carry_a_t_interval_over_their_seeds(shipped):
    space, _ = shipped
    best = answers.best_table(space)
    assert best["mean_accuracy"].is_monotonic_decreasing
    top = space.configs.loc[space.configs["mean"].idxmax()]
    rows = [row for row in read_reference(SHIPPED)
            if measurement_keys(row["config"], row["fidelity"]).config == top["config_key"]]
    values = np.array([curve_value(row["curve"]) for row in rows])
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(),
                                 scale=stats.sem(values))
    assert best.loc[0, ["ci_low_accuracy", "ci_high_accuracy"]].tolist() == pytest.approx(
        [low, high])
