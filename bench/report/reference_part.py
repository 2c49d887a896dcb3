"""The report's part from the shipped reference tables (results/reference/): the FAQ answered over
the whole space, beside the local answers of `confirm`, so a fresh clone has answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.evidence import whole_space as ws
from bench.evidence import whole_space_sentences as sentences
from bench.report.page import Folded, Section
from bench.report.whole_space_plots import whole_space_plots
from bench.store import layout
from bench.store.identity import KNOBS
from bench.store.reference import read_reference


@dataclass
class ReferencePart:
    sections: list[Section] = field(default_factory=list)
    tables: dict[str, tuple[str, pd.DataFrame]] = field(default_factory=dict)  # name -> CSV
    answers: list[str] = field(default_factory=list)  # every sentence, for summary.md
    notes: list[str] = field(default_factory=list)


def reference_part(results_dir: Path) -> ReferencePart:
    """One section per reference table: the methods, a line per knob (its steps folded), the
    knob importance and a plot per knob; the steps as a table."""
    part = ReferencePart()
    for path in layout.reference_tables(results_dir):
        rows = read_reference(path)
        if not rows:
            continue
        space = ws.whole_space(rows, space=path.stem.split("-")[0])
        lines: list[str | Folded] = list(sentences.header(space))
        for knob in KNOBS:
            verdict, *details = sentences.knob_sentences(space, knob)
            lines += [verdict, Folded("Each step, and where it depends on another knob", details)]
            part.answers += [verdict, *details]
        lines.append(sentences.importance_sentence(space))
        part.answers += [*sentences.header(space), sentences.importance_sentence(space)]
        name = f"reference_{path.stem.replace('-', '_')}"
        caption = f"Matched pairs {sentences.scope(space)} ({path.name})"
        part.tables[name] = (caption, space.steps)
        part.sections.append(Section(
            f"The FAQ over the whole {space.space} space (reference table {path.name})",
            lines=lines, tables=[(caption, space.steps)], plots=whole_space_plots(space)))
    return part
