"""Turn the studies under a results folder into tables (CSV, Markdown), a summary and index.html."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import layout
from bench.report import benchmark, tables
from bench.report.benchmark import split_compare
from bench.report.benchmark_plots import benchmark_plots
from bench.report.formatting import markdown
from bench.report.load import NothingToReport, StudyData, load_studies, with_completed_trials
from bench.report.page import Section, render_page
from bench.report.plots import comparison_plots, study_plots


@dataclass(frozen=True)
class ReportSettings:
    """What to report on and where to write it."""

    results_dir: Path
    study: str | None = None
    out_dir: Path | None = None  # default: layout.report_dir(results_dir, study)
    top: int = 10  # rows in the accuracy, size and speed tables


@dataclass
class ReportOutput:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_report(settings: ReportSettings) -> ReportOutput:
    """Read the studies, write every table as CSV and Markdown, summary.md and index.html.

    Compare studies (bench.compare) are reported together in one Benchmark part, never one by
    one nor among the ordinary studies' tables.
    """
    ordinary, compared = split_compare(load_studies(settings.results_dir, settings.study))
    studies, notes = _reportable(ordinary, compared)
    out = ReportOutput(Path(settings.out_dir or layout.report_dir(settings.results_dir,
                                                                     settings.study)), notes=notes)
    out.out_dir.mkdir(parents=True, exist_ok=True)
    named = _ordinary_tables(studies, settings.top) if studies else {}
    bench = benchmark.summarize(compared) if compared else None
    if bench is not None:
        named.update(bench.tables())
        notes += bench.notes
    for name, (_, frame) in named.items():
        out.files.append(_write(out.out_dir / f"{name}.csv", frame.to_csv(index=False)))
        out.files.append(_write(out.out_dir / f"{name}.md", markdown(frame) + "\n"))

    summary = tables.summary_lines(studies) if studies else []
    verdicts = bench.verdicts if bench is not None else []
    answers = {s.name: tables.faq_answers(s) for s in studies}
    out.files.append(_write(out.out_dir / "summary.md",
                            _summary_markdown(summary, verdicts, answers, notes)))
    sections = _sections(studies, named, answers) if studies else []
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


def _ordinary_tables(studies: list[StudyData], top: int) -> dict[str, tuple[str, pd.DataFrame]]:
    named = {
        "accuracy": ("Top trials: accuracy", tables.accuracy_table(studies, top)),
        "size": ("Top trials: size", tables.size_table(studies, top)),
        "speed": ("Top trials: speed (inference throughput at batch 256)",
                  tables.speed_table(studies, top)),
        "pruning": ("Pruning", tables.pruning_table(studies)),
        "faq": ("FAQ", pd.concat([tables.faq_table(s) for s in studies], ignore_index=True)),
    }
    finals = tables.final_models_table(studies)
    if len(finals):
        named["final_models"] = ("Final models (test set)", finals)
    if len(studies) > 1:
        named["comparison"] = ("Best so far, per study",
                               pd.concat([tables.progress_table(s) for s in studies]))
    return named


def _sections(studies: list[StudyData], named: dict, answers: dict) -> list[Section]:
    overview = Section("Tables", tables=[named[k] for k in
                                         ("accuracy", "size", "speed", "pruning", "final_models")
                                         if k in named])
    sections = [Section("FAQ answers", lines=[f"{name}: {line}" if len(studies) > 1 else line
                                             for name, lines in answers.items() for line in lines]),
                overview]
    comparison = comparison_plots(studies)
    if comparison:
        sections.append(Section("Studies compared", plots=comparison))
    for study in studies:
        sections.append(Section(f"Study {study.name}",
                                tables=[("FAQ table", tables.faq_table(study))],
                                plots=study_plots(study)))
    return sections


def _summary_markdown(summary: list[str], verdicts: list[str], answers: dict[str, list[str]],
                      notes: list[str]) -> str:
    lines = ["# mnist-bench report", "", *summary, ""]
    if verdicts:
        lines += ["## Benchmark", "", *[f"- {v}" for v in verdicts], ""]
    for name, study_answers in answers.items():
        lines += [f"## FAQ: {name}", "", *[f"- {a}" for a in study_answers], ""]
    lines += [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
