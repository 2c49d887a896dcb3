"""The FAQ at two budgets over the same networks: a planted change of one knob's effect is found
and named, a knob whose effect stays put is not; the short table is answered over the long
table's networks only; the held-out regret never scores a network on the seed that chose it; and
the shipped tables (one epoch, ten epochs) go through it."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.evidence import budget_change as bc
from bench.report import reference_budgets as budgets
from bench.report.reference_part import reference_part
from bench.store.reference import read_reference
from test_whole_space import FIDELITY, GRID, grid_configs, row

LONG_FIDELITY = {**FIDELITY, "train_settings": {**FIDELITY["train_settings"], "epochs": 10,
                                                "learning_rate": 0.001,
                                                "lr_schedule": "constant"}}
ROOT = Path(__file__).resolve().parents[1] / "results" / "reference"
SLICE = next((path for path in (ROOT / "faq-tutorial-cpu.jsonl",
                                ROOT / "in-progress" / "faq-tutorial-cpu.jsonl")
              if path.exists()), None)


def accuracy(config: dict, kernel_step: float) -> float:
    """FC width helps 0.2 pp a step at both budgets; the kernel helps `kernel_step` a step."""
    return (0.97 + kernel_step * GRID["kernel_size"].index(config["kernel_size"])
            + 0.002 * GRID["fc_width"].index(config["fc_width"]))


def tables(seeds: int = 3, noise: float = 0.0003) -> tuple[list[dict], list[dict]]:
    """A short table over the whole grid where the kernel helps 0.3 pp a step, and a long table
    over a third of it where the kernel does nothing."""
    rng = np.random.default_rng(5)
    configs = grid_configs()
    short = [row(c, s, accuracy(c, 0.003) + rng.normal(0, noise))
             for c in configs for s in range(seeds)]
    kept = [c for c in configs if c["pool_size"] == 2 and c["stride"] == 1]
    long = [row(c, s, accuracy(c, 0.0) + rng.normal(0, noise), fidelity=LONG_FIDELITY)
            for c in kept for s in range(seeds)]
    return short, long


@pytest.fixture(scope="module")
def change() -> bc.BudgetChange:
    short, long = tables()
    return bc.budget_change(short, long)


def test_the_short_table_is_answered_over_the_long_tables_networks_only(change):
    networks = {side: set(space.configs["config_key"].map(bc.network_key))
                for side, space in (("short", change.short), ("long", change.long))}
    assert networks["short"] == networks["long"]
    assert len(change.short.configs) == 27 and change.short.epochs == 1
    assert change.long.epochs == 10


def test_a_planted_change_of_the_kernel_effect_is_found_and_named(change):
    steps = change.steps.set_index(["knob", "low_value", "high_value"])
    for low, high in ((3, 5), (5, 7)):
        kernel = steps.loc[("kernel_size", low, high)]
        assert kernel["direction_short"] == 1 and kernel["direction_long"] == 0
        assert kernel["answer"] == bc.CHANGES
        assert kernel["change_pp"] == pytest.approx(-0.3, abs=0.05)
        assert kernel["change_ci_high_pp"] < 0
    for low, high in ((32, 64), (64, 128)):
        fc = steps.loc[("fc_width", low, high)]
        assert fc["answer"] == bc.SAME and fc["direction_long"] == 1
        assert abs(fc["change_pp"]) < 0.05
        assert fc["change_ci_high_pp"] - fc["change_ci_low_pp"] < 0.15


def test_a_direction_that_flips_within_noise_is_not_called_a_change():
    assert bc._answer(1, 0, -0.2, 0.05, -0.1) == bc.NOT_SHOWN
    assert bc._answer(1, 0, -0.2, -0.01, -0.1) == bc.CHANGES
    assert bc._answer(-1, -1, -0.1, 0.3, 0.1) == bc.SAME
    # the same direction, with the change shown: the effect shrinks (toward zero) or grows
    assert bc._answer(-1, -1, 0.1, 0.3, 0.2) == bc.SMALLER
    assert bc._answer(1, 1, -0.3, -0.1, -0.2) == bc.SMALLER
    assert bc._answer(-1, -1, -0.3, -0.1, -0.2) == bc.LARGER
    assert bc._answer(1, 1, 0.1, 0.3, 0.2) == bc.LARGER
    assert bc._answer(0, 0, 0.1, 0.3, 0.2) == bc.SAME  # no clear difference at either budget
    # a change within one seed sd is not named, however narrow its interval
    small = bc.SEED_SD / 2
    assert bc._answer(1, 1, small / 2, small * 2, small) == bc.SAME


def test_rank_agreement_is_measured_over_every_network_in_both(change):
    agreement = change.agreement
    assert agreement["configs"] == 27
    # FC width orders both budgets the same way; the kernel orders only the short one
    assert 0 < agreement["tau"] < 1 and agreement["p"] < 0.05
    assert agreement["ci_low"] <= agreement["tau"] <= agreement["ci_high"]


def test_held_out_regret_chooses_on_the_other_seeds_and_scores_on_the_held_out_one():
    short = {"a": {0: 0.99, 1: 0.99, 2: 0.99}, "b": {0: 0.90, 1: 0.90, 2: 0.90},
             "c": {0: 0.91, 1: 0.91, 2: 0.91}}
    # at the long budget b is best on seeds 0 and 1 but poor on 2; c wins seed 2 alone
    long = {"a": {0: 0.95, 1: 0.95, 2: 0.95}, "b": {0: 0.99, 1: 0.99, 2: 0.93},
            "c": {0: 0.97, 1: 0.97, 2: 0.999}}
    regret = bc.transfer_regret(short, long).set_index("held_out_seed")
    assert list(regret.index) == [0, 1, 2]
    assert (regret["pick"] == "a").all()
    # held out seed 2: b is chosen on seeds 0-1 (0.99 against c's 0.97) and scores 0.93 there,
    # below the pick's 0.95: a negative regret, as it is; choosing on seed 2 too would take c
    assert regret.loc[2, "long_best"] == "b"
    assert regret.loc[2, "regret_pp"] == pytest.approx(-2.0)
    # held out seed 0: c is chosen on seeds 1-2 (0.9845 against b's 0.96) and scores 0.97
    assert regret.loc[0, "long_best"] == "c"
    assert regret.loc[0, "regret_pp"] == pytest.approx((0.97 - 0.95) * 100)


def test_a_named_pick_is_scored_on_each_seed_against_the_best_chosen_on_the_others():
    long = {"a": {0: 0.95, 1: 0.95, 2: 0.95}, "b": {0: 0.99, 1: 0.99, 2: 0.93},
            "c": {0: 0.97, 1: 0.97, 2: 0.999}}
    regret = bc.pick_regret({"the search's pick": "a", "never measured": "z"}, long)
    assert list(regret["label"].unique()) == ["the search's pick"]  # z has no long runs
    by_seed = regret.set_index("held_out_seed")
    assert list(by_seed["long_best"]) == ["c", "c", "b"]  # chosen without the held-out seed
    assert list(by_seed["regret_pp"]) == pytest.approx([2.0, 2.0, -2.0])
    # the short table's best over every network it measured, not only the long table's
    short = {"a": {0: 0.99, 1: 0.99, 2: 0.99}, "b": {0: 0.90, 1: 0.90, 2: 0.90},
             "c": {0: 0.91, 1: 0.91, 2: 0.91}, "d": {0: 0.995, 1: 0.995, 2: 0.995}}
    transfer = bc.transfer_regret(short, long)
    assert (transfer["pick"] == "a").all() and (transfer["whole_best"] == "d").all()


@pytest.mark.skipif(SLICE is None, reason="the ten-epoch slice is not measured yet")
def test_the_shipped_tables_one_epoch_against_ten():
    change = bc.budget_change(read_reference(ROOT / "faq-cpu.jsonl"), read_reference(SLICE))
    networks = set(change.long.configs["config_key"].map(bc.network_key))
    assert set(change.short.configs["config_key"].map(bc.network_key)) == networks
    assert len(networks) == 42  # the 40 designed and the 2 picked at one epoch
    assert change.short.epochs == 1 and change.long.epochs == 10
    assert set(change.steps["knob"]) == {"kernel_size", "stride", "pool_size", "pool_stride",
                                         "fc_width"}
    assert (change.steps["pairs_both"] <= change.steps["working_pairs_long"]).all()
    assert change.steps["change_pp"].map(math.isfinite).all()
    assert (change.regret["pick"].isin(networks)).all()


@pytest.mark.skipif(SLICE is None, reason="the ten-epoch slice is not measured yet")
def test_the_report_sets_the_two_budgets_side_by_side_after_the_one_epoch_answers(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    for table in (ROOT / "faq-cpu.jsonl", SLICE):
        for path in (table, table.with_suffix(".manifest.json")):
            shutil.copy(path, reference / path.name)
    part = reference_part(tmp_path)
    titles = [section.title for section in part.lead]
    assert titles[0].startswith("Answers from the reference table (faq space, one epoch")
    assert titles[1].startswith("The FAQ at one epoch and at 10 epochs")
    assert titles[2].startswith("Does one epoch rank what 10 epochs find?")
    assert titles[3].startswith("Does a large FC layer over-fit? At 10 epochs")
    assert titles[4].startswith("Answers from the reference table (faq space, 10 epochs")
    name = "reference_faq_tutorial_cpu_against_faq_cpu"
    table = part.tables[name][1]
    assert len(table) == 11 and set(table["answer"]) <= {bc.SAME, bc.SMALLER, bc.LARGER,
                                                    bc.CHANGES, bc.NOT_SHOWN}
    assert len(part.sections) == 2  # each table's details, after the local parts


@pytest.mark.skipif(not (ROOT / "faq-tutorial-cpu.jsonl").exists(),
                    reason="the ten-epoch slice is not complete yet")
def test_the_readme_block_of_both_budgets_is_what_report_writes_from_the_shipped_tables():
    part = reference_part(ROOT.parent)
    block = part.files["reference_faq_tutorial_cpu_against_faq_cpu_answers.md"]
    readme = (ROOT.parents[1] / "README.md").read_text()
    assert readme.count(budgets.START) == 1 and readme.count(budgets.END) == 1
    quoted = readme[readme.index(budgets.START):readme.index(budgets.END) + len(budgets.END)]
    assert quoted + "\n" == block, (
        "the README's block of both budgets differs from the code's: run `mnist-bench report` "
        "and paste reference_faq_tutorial_cpu_against_faq_cpu_answers.md between the markers")
    # the default search's pick, named in the manifest, has its regret at ten epochs
    assert "The default search's pick" in block and "held-out regret at 10 epochs" in block
