"""Decisions at more than one budget (`confirm --epochs E`): each budget ranked on its own
held-out seeds, and the agreement between budgets measured with an interval."""

from __future__ import annotations

from typing import Callable

import numpy as np
import optuna
import pytest

from bench.evidence.budgets import kendall_agreement
from bench.evidence import overfitting as of
from bench.evidence.decisions import WORSE
from bench.evidence.gather import gather
from bench.store import schema
from test_evidence import BEST, add_measurement

# five configs of the synthetic studies' grid, worst to best at one epoch
CONFIGS = [{**BEST, "kernel_size": 3}, {**BEST, "fc_width": 128}, {**BEST, "kernel_size": 7},
           BEST, {**BEST, "fc_width": 512}]


def test_kendall_agreement_finds_equal_and_reversed_rankings_and_needs_five_configs():
    rng = np.random.default_rng(0)
    means = [0.980, 0.983, 0.986, 0.989, 0.992]
    first = {str(i): m + rng.normal(0, 0.0005, 4) for i, m in enumerate(means)}
    same = {str(i): m + rng.normal(0, 0.0005, 4) for i, m in enumerate(means)}
    reversed_ = {str(i): m + rng.normal(0, 0.0005, 4) for i, m in enumerate(means[::-1])}
    agree = kendall_agreement(first, same)
    assert agree["configs"] == 5 and agree["tau"] == pytest.approx(1.0)
    assert 0 < agree["ci_low"] <= agree["ci_high"] <= 1
    # the exact two-sided p of a perfect order over 5: 2 of the 120 pairings are as extreme
    assert agree["p"] == pytest.approx(2 / 120)
    disagree = kendall_agreement(first, reversed_)
    assert disagree["tau"] == pytest.approx(-1.0) and disagree["ci_high"] < 0
    # seed noise as large as the gaps widens the interval to hold zero
    noisy = {str(i): m + rng.normal(0, 0.01, 2) for i, m in enumerate(means)}
    wide = kendall_agreement(first, noisy)
    assert wide["ci_low"] < 0 < wide["ci_high"]
    few = kendall_agreement({k: first[k] for k in "0123"}, {k: same[k] for k in "0123"})
    assert few["configs"] == 4 and np.isnan(few["tau"]) and np.isnan(few["p"])


def test_unrelated_rankings_are_called_agreeing_or_reversed_in_at_most_5_percent():
    """Five configs whose two budgets' means are unrelated: the permutation p rejects no
    association in at most 5% of draws (at 3 configs the interval read 'agree' in 15-17%)."""
    rng = np.random.default_rng(1)
    called = sum(kendall_agreement({str(i): rng.normal(0, 1, 2) for i in range(5)},
                                   {str(i): rng.normal(0, 1, 2) for i in range(5)},
                                   resamples=10)["p"] < 0.05 for _ in range(300))
    assert called / 300 <= 0.05


def two_budgets(rng: np.random.Generator, subset_loss: Callable[[int], float] | None = None):
    """A search at one epoch, confirm at one epoch and at twelve (6 held-out seeds each): at
    twelve epochs FC 512 (the search's pick) falls 0.5 pp behind FC 256 (BEST). With
    `subset_loss`, the twelve-epoch curves scored the training subset at `subset_loss(fc)`, plus
    noise (the gap: 0.06 minus it); without, they predate that."""
    search = optuna.create_study(study_name="s", direction="maximize")
    search.set_user_attr(schema.STUDY_ATTR_SETTINGS, {"epochs": 1})
    one = optuna.create_study(study_name="s-confirm", direction="maximize")
    twelve = optuna.create_study(study_name="s-epochs12-confirm", direction="maximize")
    for study in (one, twelve):
        study.set_user_attr(schema.STUDY_ATTR_CONFIRM, "s")
    at_one = [0.980, 0.983, 0.986, 0.989, 0.992]
    at_twelve = [0.985, 0.988, 0.991, 0.995, 0.990]
    for params, mean_one, mean_twelve in zip(CONFIGS, at_one, at_twelve):
        add_measurement(search, params, 0, mean_one + 0.002)  # the seed that selected it
        for seed in range(1, 7):
            add_measurement(one, params, seed, mean_one + rng.normal(0, 0.0005))
            add_measurement(twelve, params, seed, mean_twelve + rng.normal(0, 0.0005), epochs=12,
                            train_subset_loss=None if subset_loss is None else
                            subset_loss(params["fc_width"]) + rng.normal(0, 0.001))
    return gather([search, one, twelve])


def test_each_budget_is_decided_on_its_own_seeds_and_one_decided_better_becomes_its_best():
    """The twelve-epoch budget decides on its own seeds that FC 256 is better than the search's
    pick, so FC 256 is that budget's best (and the one to use); at one epoch the pick stays."""
    evidence = two_budgets(np.random.default_rng(1))
    assert [b.epochs for b in evidence.budgets] == [1, 12]
    first, last = evidence.budgets
    assert first.ranked is evidence.ranked and first.headline == evidence.headline
    for budget, width in zip(evidence.budgets, (512, 256)):
        best = budget.ranked[budget.ranked["is_best"]].iloc[0]
        assert best["fc_width"] == width and best["heldout_seeds"] == 6
        assert budget.ranked["fidelity_key"].nunique() == 1
    at_last = last.ranked.set_index(["kernel_size", "fc_width"])
    assert at_last.loc[(5, 512), "decision"] == WORSE and at_last.loc[(5, 256), "overtaken"]
    assert at_last.loc[(3, 256), "decision"] == WORSE
    assert any("search's pick was decided worse" in line for line in last.headline)
    # the one to use at twelve epochs is the new best, at one epoch the best itself
    assert at_last.loc[(5, 256), "recommended"]
    assert first.ranked[first.ranked["recommended"]].iloc[0]["fc_width"] == 512
    row = evidence.agreement.iloc[0]
    assert (row["from_epochs"], row["to_epochs"], row["configs"]) == (1, 12, 5)
    assert row["tau"] == pytest.approx(0.6)  # FC 512 falls below two configs: 2 of 10 pairs swap
    assert row["ci_low"] <= row["tau"] <= row["ci_high"]
    assert row["decisions_changed"] >= 1
    # each budget's FAQ pairs are its own: FC width pairs at both budgets, decided apart
    fc = evidence.pairs[evidence.pairs["knob"] == "fc_width"]
    assert sorted(fc["budget_epochs"].unique()) == [1, 12]
    assert any("FC width" in line for line in last.answers)


def test_the_vectorized_tau_is_scipys_tau_b_ties_included():
    from scipy import stats

    from bench.evidence.budgets import _tau_b

    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, (50, 6)).astype(float)  # many ties
    y = rng.integers(0, 4, (50, 6)).astype(float)
    ours = _tau_b(x, y)
    theirs = [stats.kendalltau(a, b).statistic for a, b in zip(x, y)]
    assert np.allclose(ours, theirs, equal_nan=True)


def test_the_report_shows_the_budgets_side_by_side_and_every_sentence_agrees():
    from bench.report import budgets

    evidence = two_budgets(np.random.default_rng(1))
    table = budgets.budgets_table(evidence)
    assert list(table["budget"]) == ["1 epoch", "12 epochs"]
    assert table.iloc[1]["the one to use"].startswith("kernel 5, stride 1, pool 2/2, FC 256")
    assert table.iloc[0]["the one to use"].startswith("kernel 5, stride 1, pool 2/2, FC 512")
    verdicts = budgets.verdicts_table(evidence).set_index("knob")
    assert list(verdicts.columns) == ["1 epoch", "12 epochs"]
    # FC 128 -> 256 -> 512 gains twice at one epoch; at twelve 256 -> 512 loses: mixed
    assert verdicts.loc["FC width", "1 epoch"] == "supported"
    assert verdicts.loc["FC width", "12 epochs"] == "mixed"
    row = evidence.agreement.iloc[0]
    (sentence,) = budgets.agreement_sentences(evidence)
    assert (f"tau {row['tau']:+.2f} (95% CI {row['ci_low']:+.2f} to {row['ci_high']:+.2f}, "
            f"p {row['p']:.3f})") in sentence
    assert ("agree more than chance" in sentence) == (row["p"] < 0.05 and row["tau"] > 0)
    section = budgets.budgets_section(evidence)
    assert section is not None and len(section.tables) == 3


def search_and_twelve() -> tuple[optuna.Study, optuna.Study]:
    """An empty search at one epoch and its empty confirm at twelve."""
    search = optuna.create_study(study_name="s", direction="maximize")
    search.set_user_attr(schema.STUDY_ATTR_SETTINGS, {"epochs": 1})
    twelve = optuna.create_study(study_name="s-epochs12-confirm", direction="maximize")
    twelve.set_user_attr(schema.STUDY_ATTR_CONFIRM, "s")
    return search, twelve


def test_a_budget_confirmed_alone_is_ranked_and_its_agreement_is_not_measured():
    """confirm --epochs 12 before any confirm at the search's budget: the race's own gather (the
    search and the twelve-epoch study only) must rank the new budget, with no agreement to give."""
    rng = np.random.default_rng(2)
    search, twelve = search_and_twelve()
    for params in CONFIGS:
        add_measurement(search, params, 0, 0.985 + rng.normal(0, 0.001))
    for params in CONFIGS[:2]:  # fewer measurements than the search: its budget stays the main one
        for seed in (1, 2):
            add_measurement(twelve, params, seed, 0.99 + rng.normal(0, 0.001), epochs=12)
    evidence = gather([search, twelve])
    assert [b.epochs for b in evidence.budgets] == [1, 12]
    assert evidence.agreement.iloc[0]["configs"] == 0 and np.isnan(evidence.agreement.iloc[0]["tau"])


def test_a_longer_budget_answers_the_overfitting_claim_on_its_runs_paired_along_fc_width():
    """At twelve epochs FC 128 -> 256 -> 512 of one base, six seeds each, with a gap planted to
    grow 0.01 a doubling: the claim is supported there, named with its budget and n, in the
    budgets section and the sentences summary.md takes; one epoch judges nothing."""
    from bench.report import budgets
    from bench.report.page_parts import Folded

    evidence = two_budgets(np.random.default_rng(1),
                           subset_loss=lambda fc: 0.05 - 0.01 * np.log2(fc / 128))
    assert evidence.budgets[0].fc_overfitting == []
    twelve = evidence.budgets[1]
    gap, late = twelve.fc_overfitting
    assert gap.verdict == of.SUPPORTED and (gap.bases, gap.seeds, gap.pairs, gap.runs) == (
        1, 6, 12, 18)
    assert ((gap.steps["estimate"] - 0.01).abs() < 0.003).all()
    assert list(gap.steps["pairs"]) == [6, 6]
    assert late.verdict == of.UNDECIDED  # flat accuracy, but one base gives no interval
    lines = budgets.overfitting_sentences(evidence)
    assert lines == twelve.overfitting == [gap.sentence("12 epochs"), late.sentence("12 epochs")]
    assert all(line in twelve.answers for line in lines)  # the budget's FAQ answers: one method
    assert lines[0].startswith(
        "At 12 epochs, the claim \"a large FC layer overfits\", judged by the generalization gap "
        "at the last epoch (validation loss minus training-subset loss): supported (1 base, "
        "6 seeds, 12 pairs of 18 runs): it grows with FC width")
    section = budgets.budgets_section(evidence)
    assert all(line in section.lines for line in lines)
    (definitions,) = [line for line in section.lines
                      if isinstance(line, Folded) and line.label == "Definitions"]
    assert definitions.lines == ["Over-fitting: " + of.METHOD + "."]


def test_a_longer_budget_without_fc_pairs_says_so_in_one_line():
    """Twelve epochs of three bases with one FC width each, and FC 128 of one of them only in
    curves from before the training subset was scored: no pair to judge, said in one line that
    counts the scored runs; no method to define."""
    from bench.report import budgets
    from bench.report.page_parts import Folded

    rng = np.random.default_rng(3)
    search, twelve = search_and_twelve()
    for params in CONFIGS:
        for seed in (0, 10):  # more measurements than at twelve: the search's budget is the main
            add_measurement(search, params, seed, 0.985 + rng.normal(0, 0.001))
    for params in CONFIGS[:4]:  # kernel 3, 7 and 5 at FC 256, and kernel 5 at FC 128
        for seed in (1, 2):
            add_measurement(twelve, params, seed, 0.99 + rng.normal(0, 0.001), epochs=12,
                            train_subset_loss=None if params["fc_width"] == 128 else 0.02)
    evidence = gather([search, twelve])
    assert [b.epochs for b in evidence.budgets] == [1, 12]
    assert evidence.budgets[1].fc_overfitting == []
    assert budgets.overfitting_sentences(evidence) == [
        "At 12 epochs, the claim \"a large FC layer overfits\": not measured (no two of its 6 "
        "runs with a training-subset score share a base config and a seed at neighbouring FC "
        "widths; 2 other runs recorded before the subset was scored)."]
    section = budgets.budgets_section(evidence)
    assert budgets.overfitting_sentences(evidence)[0] in section.lines
    assert not any(isinstance(line, Folded) and line.label == "Definitions"
                   for line in section.lines)
