"""Turn the studies under a results folder into tables (CSV, Markdown), a summary and index.html."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.store import layout
from bench.evidence.confirm import CONFIRM_SUFFIX
from bench.store.identity import KNOBS
from bench.evidence.decisions import MARGIN
from bench.evidence.summary import Evidence, gather
from bench.report import benchmark, tables
from bench.report.benchmark import split_compare
from bench.report.benchmark_plots import benchmark_plots
from bench.report.formatting import markdown
from bench.report.load import NothingToReport, StudyData, load_studies, with_completed_trials
from bench.report.page import Section, render_page
from bench.report.plots import comparison_plots, evidence_plots, faq_forest, study_plots
from bench.store.studies import StudySource


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
    """Read the studies, write every table as CSV and Markdown, summary.md and index.html.

    Compare studies (bench.benchmark.compare) are reported together in one Benchmark part, never one by
    one nor among the ordinary studies' tables.
    """
    ordinary, compared = split_compare(load_studies(
        StudySource(settings.results_dir, settings.storage), settings.study))
    studies, notes = _reportable(ordinary, compared)
    out = ReportOutput(Path(settings.out_dir or layout.report_dir(settings.results_dir,
                                                                     settings.study)), notes=notes)
    out.out_dir.mkdir(parents=True, exist_ok=True)
    evidence = gather((s.study for s in studies), settings.margin) if studies else None
    if evidence is not None:
        notes += evidence.notes
    named = _ordinary_tables(studies, evidence, settings.top) if studies else {}
    bench = benchmark.summarize(compared) if compared else None
    if bench is not None:
        named.update(bench.tables())
        notes += bench.notes
    for name, (_, frame) in named.items():
        out.files.append(_write(out.out_dir / f"{name}.csv", frame.to_csv(index=False)))
        out.files.append(_write(out.out_dir / f"{name}.md", markdown(frame) + "\n"))

    summary = _summary_lines(studies, evidence) if studies else []
    verdicts = bench.verdicts if bench is not None else []
    answers = evidence.answers if evidence is not None else []
    out.files.append(_write(out.out_dir / "summary.md",
                            _summary_markdown(summary, verdicts, answers, notes)))
    sections = _sections(studies, named, evidence) if studies else []
    if bench is not None:
        sections.insert(min(2, len(sections)), Section(
            "Benchmark", lines=benchmark.DEFINITIONS,
            tables=[named["regret"]], plots=benchmark_plots(bench)))
    page = render_page("mnist-bench report", summary + verdicts, notes, sections)
    out.files.append(_write(out.out_dir / "index.html", page))
    return out


def _reportable(ordinary: list[StudyData],
                compared: list[StudyData]) -> tuple[list[StudyData], list[str]]:
    """The ordinary studies with a completed trial and notes on the others; NothingToReport
    when neither they nor the compare studies have one."""
    benchmark_ready = any(len(s.completed) for s in compared)
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
    named["pruning"] = ("Pruning", tables.pruning_table(studies))
    finals = tables.final_models_table(studies)
    if len(finals):
        named["final_models"] = ("Final models (test set)", finals)
    if len(studies) > 1:
        named["comparison"] = ("Best so far, per study",
                               pd.concat([tables.progress_table(s) for s in studies]))
    return named


def _sections(studies: list[StudyData], named: dict, evidence: Evidence | None) -> list[Section]:
    overview = Section("Tables", tables=[named[k] for k in
                                         ("accuracy", "size", "speed", "pruning", "final_models")
                                         if k in named],
                       plots=evidence_plots(evidence.ranked) if evidence is not None else [])
    answers = evidence.answers if evidence is not None else [
        "No completed trial is a whole measurement yet: nothing to answer."]
    faq_tables = [named["faq"]] if "faq" in named else []
    forest = [faq_forest(evidence.pairs)] if evidence is not None else []
    sections = [Section("FAQ answers", lines=answers, tables=faq_tables, plots=forest), overview]
    comparison = comparison_plots(studies)
    if comparison:
        sections.append(Section("Studies compared", plots=comparison))
    for study in studies:
        sections.append(Section(f"Study {study.name}", plots=study_plots(study)))
    return sections


def _summary_lines(studies: list[StudyData], evidence: Evidence | None) -> list[str]:
    """The headline from the evidence, the test accuracy of the config to use, and the counts."""
    trials = sum(len(s.trials) for s in studies)
    counts = f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'}, {trials} trials"
    if evidence is None:
        return ["No completed trial is a whole measurement yet.", counts + "."]
    ranked, measured = evidence.ranked, evidence.measurements
    lines = list(evidence.headline)
    use = ranked[ranked["recommended"]].iloc[0]
    finals = tables.final_models_by_config(studies).set_index("config_id")
    if use["config_id"] in finals.index:
        final = finals.loc[use["config_id"]]
        if final["repeats"] > 1:
            lines.append(f"Test accuracy of the one to use (finetune run {final['run']}, "
                         f"{final['repeats']} seeds): {final['test_accuracy_mean'] * 100:.2f}% ± "
                         f"{final['test_accuracy_std'] * 100:.2f} pp (standard deviation).")
        else:
            lines.append(f"Test accuracy of the one to use (finetune run {final['run']}, one "
                         f"seed): {final['test_accuracy_mean'] * 100:.2f}%.")
    else:
        lines.append(f"Test accuracy of the one to use: not measured yet ({_how_to_test(use, measured)}).")
    lines.append(f"{counts}; {measured['config_id'].nunique()} distinct configs, {len(measured)} "
                 f"measurements (config x fidelity x seed; replays and repeats of one measurement "
                 f"count once).")
    return lines


def _how_to_test(config: pd.Series, measured: pd.DataFrame) -> str:
    """The command that finetunes and tests `config` (the one to use)."""
    searches = {name.removesuffix(CONFIRM_SUFFIX) for name in measured["study"]}
    if len(searches) == 1:  # one search and its confirm: finetune --best takes the one to use
        return f"`mnist-bench finetune --best --study {searches.pop()}` trains and tests it"
    sources = measured[(measured["config_id"] == config["config_id"])
                       & ~measured["study"].str.endswith(CONFIRM_SUFFIX)]
    if len(sources):
        source = sources.iloc[0]
        return (f"`mnist-bench finetune --study {source['study']} --trial {source['trial']}` "
                "trains and tests it")
    flags = " ".join(f"--{knob.replace('_', '-')} {config[knob]}" for knob in KNOBS)
    return f"only `confirm` measured it; `mnist-bench train {flags}` trains it from scratch"


def _summary_markdown(summary: list[str], verdicts: list[str], answers: list[str],
                      notes: list[str]) -> str:
    lines = ["# mnist-bench report", "", *summary, ""]
    if verdicts:
        lines += ["## Benchmark", "", *[f"- {v}" for v in verdicts], ""]
    lines += ["## FAQ answers", "", *[f"- {a}" for a in answers], ""]
    lines += [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
