"""Turn the studies under a results folder into tables (CSV, Markdown), a summary and index.html."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.store import layout
from bench.evidence.targets import CONFIRM_SUFFIX, confirmed_name
from bench.store.identity import KNOBS
from bench.evidence.decisions import MARGIN
from bench.evidence.gather import Evidence, gather
from bench.report import benchmark, budgets, glance, tables, write
from bench.report.benchmark import split_compare
from bench.report.benchmark_plots import benchmark_plots
from bench.report.formatting import markdown
from bench.report.load import NothingToReport, StudyData, load_studies, with_completed_trials
from bench.report.page import render_page
from bench.report.page_parts import Folded, Section
from bench.report.plots import accuracy_against, comparison_plots, faq_forest, study_plots
from bench.report.reference_part import reference_part
from bench.store.studies import StudyNotFound, StudySource
from bench.store.wording import counted, pct, points

# The page's parts, top to bottom; each holds zero or more sections. The shipped reference's
# FAQ follows the local FAQ answers; the benchmark follows the ordinary tables and comes before
# the per-study plots.
PAGE_ORDER = ("reference answers", "at a glance", "faq answers", "budgets", "tables", "benchmark",
              "reference details", "studies compared", "studies")


@dataclass(frozen=True)
class ReportSettings:
    """What to report on and where to write it."""

    results_dir: Path
    study: str | None = None
    storage: str | None = None  # read the studies from this Optuna storage, not results_dir
    out_dir: Path | None = None  # default: layout.report_dir(results_dir, study)
    top: int = 10  # rows in the accuracy, size and speed tables
    margin: float = MARGIN  # of practical equivalence, a fraction (0.001 = 0.1 pp)


@dataclass
class ReportOutput:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_report(settings: ReportSettings) -> ReportOutput:
    """The report written in a new folder that then replaces the old one whole (write.py)."""
    out_dir = Path(settings.out_dir or layout.report_dir(settings.results_dir, settings.study))
    with write.replacing(out_dir) as staging:
        built = _build_report(settings, staging)
    return ReportOutput(out_dir, [out_dir / path.name for path in built.files], built.notes)


def _build_report(settings: ReportSettings, out_dir: Path) -> ReportOutput:
    """Read the studies, write every table as CSV and Markdown, summary.md and index.html.

    Compare studies (bench.benchmark.compare) are reported together in one Benchmark part, never one by
    one nor among the ordinary studies' tables.
    """
    reference = reference_part(settings.results_dir)
    try:
        ordinary, compared = split_compare(load_studies(
            StudySource(settings.results_dir, settings.storage), settings.study))
    except StudyNotFound as error:
        if not reference.sections or settings.storage or settings.study:  # none where asked
            raise
        ordinary, compared = [], []  # a fresh clone: the shipped reference answers only
        reference.notes.append(f"No local studies ({error}): the answers below come from the "
                               "shipped reference tables alone.")
    studies, notes = _reportable(ordinary, compared, bool(reference.sections))
    notes += reference.notes
    out = ReportOutput(out_dir, notes=notes)
    evidence = gather((s.study for s in studies), settings.margin) if studies else None
    if evidence is not None:
        notes += evidence.notes
    named = _ordinary_tables(studies, evidence, settings.top) if studies else {}
    named.update(reference.tables)
    bench = benchmark.summarize(compared, settings.margin) if compared else None
    if bench is not None:
        named.update(bench.tables())
        notes += bench.notes
    for name, (_, frame) in named.items():
        out.files.append(_write(out.out_dir / f"{name}.csv", frame.to_csv(index=False)))
        out.files.append(_write(out.out_dir / f"{name}.md", markdown(frame) + "\n"))
    for name, text in reference.files.items():  # the README's reference block, to paste
        out.files.append(_write(out.out_dir / name, text))

    headline = _summary_lines(studies, evidence) if studies else []
    verdicts = bench.verdicts if bench is not None else []
    answers = ([*evidence.answers, *budgets.agreement_sentences(evidence),
                *budgets.overfitting_sentences(evidence)] if evidence else [])
    out.files.append(_write(out.out_dir / "summary.md",
                            _summary_markdown(headline, verdicts, answers, reference.answers,
                                              notes)))
    parts = _sections(studies, named, evidence, settings.top) if studies else {}
    parts["reference answers"] = reference.lead  # the answers lead the page
    parts["reference details"] = reference.sections
    if bench is not None:
        parts["benchmark"] = [Section(
            "Benchmark", lines=[*verdicts,
                                Folded("Definitions", benchmark.definitions(settings.margin))],
            tables=[(f"{named['regret'][0]} (every column in regret.csv)",
                     benchmark.regret_on_page(bench))], plots=benchmark_plots(bench))]
    sections = [section for part in PAGE_ORDER for section in parts.get(part, [])]
    summary = headline if evidence is None else [  # three short lines, the headline folded
        *glance.summary_lines(evidence),
        Folded("Every config against the best, the test accuracy, the counts", headline)]
    page = render_page("mnist-bench report", summary, notes, sections)
    out.files.append(_write(out.out_dir / "index.html", page))
    return out


def _reportable(ordinary: list[StudyData], compared: list[StudyData],
                has_reference: bool = False) -> tuple[list[StudyData], list[str]]:
    """The ordinary studies with a completed trial and notes on the others; NothingToReport
    when neither they, the compare studies nor a reference table have one."""
    benchmark_ready = any(len(s.completed) for s in compared) or has_reference
    if not ordinary:
        if not benchmark_ready:
            raise NothingToReport(f"none of the {len(compared)} compare studies has a completed "
                                  "trial yet")
        return [], []
    try:
        return with_completed_trials(ordinary)
    except NothingToReport as error:
        if not benchmark_ready:
            raise
        return [], [str(error)]


def _ordinary_tables(studies: list[StudyData], evidence: Evidence | None,
                     top: int) -> dict[str, tuple[str, pd.DataFrame]]:
    named = {}
    if evidence is not None:
        finals = tables.final_models_by_config(studies)
        named = {
            "accuracy": ("Top configs: validation accuracy over seeds (replays folded in)",
                         tables.accuracy_table(evidence.ranked, finals, top)),
            "size": ("Top configs: size", tables.size_table(evidence.ranked, top)),
            "speed": ("Top configs: speed", tables.speed_table(evidence.ranked, top)),
            "faq": ("FAQ: paired comparisons", tables.faq_table(evidence.pairs)),
        }
        if len(evidence.budgets) > 1:
            named["budgets"] = ("Each budget's best and the one to use",
                                budgets.budgets_table(evidence))
            named["budget_verdicts"] = ("The tutorial's claims at each budget",
                                        budgets.verdicts_table(evidence))
            named["budget_agreement"] = ("Rank agreement between budgets", evidence.agreement)
    named["pruning"] = ("Pruning", tables.pruning_table(studies))
    finals = tables.final_models_table(studies)
    if len(finals):
        named["final_models"] = ("Final models (test set)", finals)
    if len(studies) > 1:
        named["comparison"] = ("Best so far, per study",
                               pd.concat([tables.progress_table(s) for s in studies]))
    return named


def _sections(studies: list[StudyData], named: dict, evidence: Evidence | None,
              top: int) -> dict[str, list[Section]]:
    """The ordinary studies' parts of the page (PAGE_ORDER names them): the two pictures, the
    FAQ answers (a line per knob, its sentences folded), the budgets, the tables in the columns
    that fit the page (the CSV files keep every column), then per-study plots."""
    tables = [named[k] for k in ("size", "speed", "pruning", "final_models") if k in named]
    if evidence is None:
        parts = {"faq answers": [Section("FAQ answers", lines=[
                     "No completed trial is a whole measurement yet: nothing to answer."])],
                 "tables": [Section("Tables", tables=tables)]}
    else:
        ranked, pairs = evidence.ranked, evidence.pairs
        budgets_section = budgets.budgets_section(evidence)
        parts = {
            "at a glance": [Section("At a glance", plots=[
                faq_forest(pairs),
                accuracy_against(ranked, "flops_per_image", "FLOPs per image", log=True)])],
            "faq answers": [Section(
                "FAQ answers", lines=glance.knob_answers(
                    pairs, ranked["fidelity_key"].iloc[0],
                    {budget.fidelity_key: budget.overfitting for budget in evidence.budgets}),
                tables=[(f"{named['faq'][0]} (every column in faq.csv)",
                         glance.faq_columns(pairs))])],
            "budgets": [budgets_section] if budgets_section else [],
            "tables": [Section(
                "Tables", tables=[(f"{named['accuracy'][0]} (every column in accuracy.csv)",
                                   glance.accuracy_columns(ranked, top)), *tables],
                plots=[accuracy_against(ranked, "latency_ms_batch1", "latency at batch 1 (ms)",
                                        log=True)])]}
    comparison = comparison_plots(studies)
    parts["studies compared"] = ([Section("Studies compared", plots=comparison)]
                                 if comparison else [])
    parts["studies"] = [Section(f"Study {study.name}", plots=study_plots(study))
                        for study in studies]
    return parts


def _summary_lines(studies: list[StudyData], evidence: Evidence | None) -> list[str]:
    """The headline from the evidence, the test accuracy of the config to use, and the counts."""
    trials = sum(len(s.trials) for s in studies)
    counts = f"{counted(len(studies), 'study', 'studies')}, {trials} trials"
    if evidence is None:
        return ["No completed trial is a whole measurement yet.", counts + "."]
    ranked, measured = evidence.ranked, evidence.measurements
    lines = list(evidence.headline)
    use = ranked[ranked["recommended"]].iloc[0]
    finals = tables.final_models_by_config(studies).set_index("config_key")
    if use["config_key"] in finals.index:
        final = finals.loc[use["config_key"]]
        if final["repeats"] > 1:
            lines.append(f"Test accuracy of the one to use (finetune run {final['run']}, "
                         f"{final['repeats']} seeds): {pct(final['test_accuracy_mean'])} ± "
                         f"{points(final['test_accuracy_std'])} (standard deviation)"
                         f"{tables.on_test_images(final)}.")
        else:
            lines.append(f"Test accuracy of the one to use (finetune run {final['run']}, one "
                         f"seed): {pct(final['test_accuracy_mean'])}{tables.on_test_images(final)}.")
    else:
        lines.append(f"Test accuracy of the one to use: not measured yet ({_how_to_test(use, measured)}).")
    lines.append(f"{counts}; {measured['config_key'].nunique()} distinct configs, {len(measured)} "
                 f"measurements (config x fidelity x seed; replays and repeats of one measurement "
                 f"count once).")
    return lines


def _how_to_test(config: pd.Series, measured: pd.DataFrame) -> str:
    """The command that finetunes and tests `config` (the one to use)."""
    searches = {confirmed_name(name) for name in measured["study"]}
    if len(searches) == 1:  # one search and its confirm: finetune --best takes the one to use
        return f"`mnist-bench finetune --best --study {searches.pop()}` trains and tests it"
    sources = measured[(measured["config_key"] == config["config_key"])
                       & ~measured["study"].str.endswith(CONFIRM_SUFFIX)]
    if len(sources):
        source = sources.iloc[0]
        return (f"`mnist-bench finetune --study {source['study']} --trial {source['trial']}` "
                "trains and tests it")
    flags = " ".join(f"--{knob.replace('_', '-')} {config[knob]}" for knob in KNOBS)
    return f"only `confirm` measured it; `mnist-bench train {flags}` trains it from scratch"


def _summary_markdown(summary: list[str], verdicts: list[str], answers: list[str],
                      reference: list[str], notes: list[str]) -> str:
    lines = ["# mnist-bench report", "", *summary, ""]
    if verdicts:
        lines += ["## Benchmark", "", *[f"- {v}" for v in verdicts], ""]
    if answers:
        lines += ["## FAQ answers", "", *[f"- {a}" for a in answers], ""]
    if reference:
        lines += ["## The FAQ over the whole space (reference tables)", "",
                  *[f"- {a}" for a in reference], ""]
    lines += [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
