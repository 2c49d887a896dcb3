"""bench/report/glance.py: the short lines say what the numbers beside them say, and the page's
tables are narrow while the CSV files keep every column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_studies import write_study
from test_evidence import synthetic_study

from bench.evidence.answers import (
    CONTRADICTED, MIXED, NO_EFFECT, SUPPORTED, UNDECIDED, claim_verdict, knob_answer, measured,
)
from bench.evidence.decisions import MARGIN
from bench.evidence.gather import gather
from bench.report import glance
from bench.report.page import Folded


@pytest.fixture(scope="module")
def evidence():
    """Held-out seeds (a study made outside the search): kernel 7 better, stride 2 worse."""
    return gather([synthetic_study(np.random.default_rng(0),
                                   {"stride": -0.008, "kernel_size": +0.006}, seeds=6)])


@pytest.mark.parametrize("knob, decisions, verdict", [
    ("kernel_size", ["better", "undecided"], SUPPORTED),  # larger kernels claimed better
    ("stride", ["better", "equivalent"], CONTRADICTED),  # larger strides claimed worse
    ("pool_size", ["better", "worse"], MIXED),
    ("fc_width", ["equivalent", "undecided"], NO_EFFECT),
    ("pool_stride", ["undecided"], UNDECIDED),
])
def test_knob_line_says_the_claims_verdict_and_counts_the_pairs(knob, decisions, verdict):
    pairs = pd.DataFrame({"knob": knob, "decision": decisions, "margin": 0.001})
    line = glance.knob_line(knob, pairs)
    assert claim_verdict(decisions, glance.CLAIMS[knob].direction) == verdict
    assert line.split(" (")[0].endswith(f": {verdict}")
    count = {d: decisions.count(d) for d in ("better", "worse", "equivalent", "undecided")}
    assert (f"{len(decisions)} paired comparison{'s' if len(decisions) > 1 else ''}: "
            f"{count['better']} larger value more accurate, {count['worse']} larger value less "
            f"accurate, {count['equivalent']} equivalent within +-0.10 pp, "
            f"{count['undecided']} undecided") in line


def test_a_knob_without_pairs_is_untested_and_a_budget_is_named():
    empty = pd.DataFrame(columns=["knob", "decision", "margin"])
    assert glance.knob_line("fc_width", empty).startswith("FC width: untested (")
    pairs = pd.DataFrame({"knob": "stride", "decision": ["worse"], "margin": 0.001})
    assert glance.knob_line("stride", pairs, epochs=12).startswith("Conv stride at 12 epochs: "
                                                                    "supported (")


def overfitting(evidence) -> dict[str, list[str]]:
    return {budget.fidelity_key: budget.overfitting for budget in evidence.budgets}


def test_each_knob_line_is_followed_by_its_full_sentences_folded(evidence):
    items = glance.knob_answers(evidence.pairs, evidence.ranked["fidelity_key"].iloc[0],
                                overfitting(evidence))
    lines, folds = items[::2], items[1::2]
    assert all(isinstance(line, str) for line in lines) and len(lines) == 5
    assert all(isinstance(fold, Folded) for fold in folds)
    stride = evidence.pairs[evidence.pairs["knob"] == "stride"]
    assert lines[1] == glance.knob_line("stride", stride)
    assert lines[1].startswith("Conv stride: supported (")  # the planted -0.8 pp
    assert folds[1].lines == knob_answer("stride", stride)
    assert folds[4].lines[-1].startswith("FC width and over-fitting")
    assert folds[4].lines[-1] == evidence.budgets[0].overfitting[-1]  # one epoch: not judged


def test_summary_is_three_short_lines_from_the_ranked_configs(evidence):
    ranked, pairs = evidence.ranked, evidence.pairs
    best = ranked[ranked["is_best"]].iloc[0]
    lines = glance.summary_lines(evidence)
    assert len(lines) == 3 and all(len(line) < 160 for line in lines)
    assert lines[0] == f"Best: kernel 7, stride 1, pool 2/2, FC 256: {measured(best)}."
    assert "n=6 held-out seeds" in lines[0]
    decided = {"better", "worse", "equivalent"}
    others = ranked.loc[~ranked["is_best"], "decision"]
    assert lines[2] == (f"Decided within ±{MARGIN * 100:.2f} pp: {others.isin(decided).sum()} of "
                        f"{len(others)} "
                        f"configs against the best, {pairs['decision'].isin(decided).sum()} of "
                        f"{len(pairs)} FAQ pairs; the rest undecided.")


def test_without_held_out_seeds_the_summary_says_nothing_is_decided(tmp_path):
    lines = glance.summary_lines(gather([write_study(tmp_path, "alpha")]))
    assert lines == ["Best so far: kernel 7, stride 1, pool 2/2, FC 256: 99.10% (the search's own "
                     "value, not held out, no interval).",
                     "The one to use: the best, until `mnist-bench confirm` decides.",
                     "Nothing is decided yet: `mnist-bench confirm` measures the top configs on "
                     "held-out seeds."]


def test_page_tables_are_narrow_and_in_words(evidence):
    accuracy = glance.accuracy_columns(evidence.ranked, limit=3)
    assert list(accuracy.columns) == ["config", "held-out mean (95% CI)", "n", "decision",
                                      "difference from the best (95% CI)", "MFLOP per image"]
    best = evidence.ranked.iloc[0]
    assert accuracy.iloc[0].tolist() == [
        "kernel 7, stride 1, pool 2/2, FC 256",
        f"{best['mean']:.2%} ({best['ci_low']:.2%} to {best['ci_high']:.2%})", 6,
        "best, the one to use", "-", f"{best['flops_per_image'] / 1e6:.1f}"]
    faq = glance.faq_columns(evidence.pairs)
    assert list(faq.columns) == ["knob", "values", "held fixed", "n", "decision",
                                 "difference (95% CI)", "MFLOP per image"]
    stride = faq[faq["knob"] == "conv stride"].iloc[0]
    assert (stride["values"], stride["held fixed"], stride["decision"]) == (
        "1 -> 2", "kernel 5, pool 2/2, FC 256", "worse")
    assert not any("config_key" in str(cell) or "fidelity" in str(cell)
                   for cell in [*accuracy.columns, *faq.columns])


def test_pairs_of_another_budget_get_lines_of_their_own_after_the_main_ones(evidence):
    main = evidence.pairs["fidelity_key"].iloc[0]
    longer = evidence.pairs[evidence.pairs["knob"] == "stride"].assign(fidelity_key="twelve",
                                                                       budget_epochs=12.0)
    items = glance.knob_answers(pd.concat([evidence.pairs, longer], ignore_index=True), main,
                                overfitting(evidence))
    lines = items[::2]
    assert len(lines) == 5 + 1  # every knob at the main budget; only stride was measured at 12
    assert lines[1].startswith("Conv stride at 1 epoch: supported (")
    assert lines[-1].startswith("Conv stride at 12 epochs: supported (")
    assert items[-1].lines == knob_answer("stride", longer)
