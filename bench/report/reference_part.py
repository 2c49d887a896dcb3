"""The report's part from the shipped reference tables (results/reference/): the FAQ answered over
the whole space among working networks, so a fresh clone has answers at once. It leads with one
table of effects, then the failing configs and the best configs; its methods close it, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.evidence import whole_space as ws
from bench.evidence import whole_space_sentences as sentences
from bench.evidence import working_effects as we
from bench.evidence.answers import capitalized
from bench.evidence import budget_change as bc
from bench.report import reference_answers as answers
from bench.report import reference_budgets as budgets
from bench.report.page_parts import Folded, Section
from bench.report.whole_space_plots import whole_space_plots
from bench.store import layout
from bench.store.reference import read_reference, reference_picks


@dataclass
class ReferencePart:
    lead: list[Section] = field(default_factory=list)  # the answers: they lead the page
    sections: list[Section] = field(default_factory=list)  # the details, after the local parts
    tables: dict[str, tuple[str, pd.DataFrame]] = field(default_factory=dict)  # name -> CSV
    answers: list[str] = field(default_factory=list)  # every sentence, for summary.md
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # file name -> text (the README block)


def reference_part(results_dir: Path) -> ReferencePart:
    """Per reference table: a leading section (the effects table, the sentences built from it, the
    best configs) and a details section (the failing configs, a plot per knob, the methods
    folded at the end); and, per two tables of the same networks at two budgets, the FAQ at both
    side by side, right after the shorter budget's answers."""
    part = ReferencePart()
    spaces: dict[Path, ws.WholeSpace] = {}
    references = [(path, rows) for path in layout.reference_tables(results_dir)
                  if (rows := read_reference(path))]
    for path, rows in references:
        space = spaces[path] = ws.whole_space(rows, space=path.stem.split("-")[0])
        effects = space.working
        best = answers.best_table(space)
        lead, claims = answers.lead(space), answers.claims_sentence(effects)
        details = [answers.failing_sentence(space), answers.dependence_sentence(effects),
                   answers.trend_sentence(effects)]
        methods = [capitalized(we.WORKING_RULE) + ".", we.METHOD + ".",
                   capitalized(we.INTERACTION_METHOD) + ".",
                   sentences.importance_sentence(space),
                   *([capitalized(space.note) + "."] if space.note else [])]
        name = f"reference_{path.stem.replace('-', '_')}"
        scope = f"{space.space} space, {answers.budget(space.epochs)}, {path.name}"
        tables = {
            name: (f"Each knob step among working networks ({scope})",
                   answers.answer_table(effects)),
            f"{name}_best": (f"The best configs by their mean over seeds ({scope})", best),
            f"{name}_failing": (f"Failing configs, by feature extractor ({scope})",
                                answers.failing_groups(space))}
        part.tables.update(tables)
        part.files[f"{name}_answers.md"] = answers.answers_markdown(space)
        part.answers += [lead, claims, *details, answers.best_sentence(best), *methods]
        shown = list(tables.values())
        shown[0] = (shown[0][0], answers.answer_table_on_page(shown[0][1]))
        part.lead.append(
            Section(f"Answers from the reference table ({scope})", lines=[lead, claims, answers.RELATION],
                    tables=shown[:2]))
        part.sections.append(
            Section(f"Failing configs, dependence and each pair ({scope})",
                    lines=[*details, Folded("Definitions", methods)], tables=shown[2:],
                    plots=whole_space_plots(space)))
    for (short, short_rows), (long, long_rows) in budgets.comparable(references):
        change = bc.budget_change(short_rows, long_rows, space=long.stem.split("-")[0],
                                  long=spaces[long], picks=reference_picks(long))
        sections, lines, table, markdown = budgets.budget_section(change, long_rows, short.name,
                                                                  long.name)
        name = f"reference_{long.stem.replace('-', '_')}_against_{short.stem.replace('-', '_')}"
        part.tables[name] = (sections[0].title, table)
        part.files[f"{name}_answers.md"] = markdown
        part.answers += lines
        part.lead[1:1] = sections  # right after the short budget's answers
    return part
