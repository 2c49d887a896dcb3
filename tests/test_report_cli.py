"""`mnist-bench report`: writes the tables and page from storage; bad input is one line, not a traceback."""

from __future__ import annotations

import re

import optuna
import pandas as pd
from click.testing import CliRunner
from report_studies import ALPHA_TRIALS, write_study

from bench.cli import cli


def run_report(*args: str):
    return CliRunner().invoke(cli, ["report", *args])


def test_report_writes_tables_from_storage(tmp_path):
    write_study(tmp_path, "alpha")
    out = tmp_path / "out"
    result = run_report(str(tmp_path), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"open {out / 'index.html'}" in result.output
    for name in ("accuracy", "size", "speed", "pruning", "faq"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.md").is_file()
    assert (out / "summary.md").read_text().startswith("# mnist-bench report")
    stored = optuna.load_study(study_name="alpha", storage=f"sqlite:///{tmp_path}/alpha/study.db")
    completed = {t.params["kernel_size"]: t.value for t in stored.trials
                 if t.state == optuna.trial.TrialState.COMPLETE}
    accuracy = pd.read_csv(out / "accuracy.csv")
    assert dict(zip(accuracy["kernel_size"], accuracy["mean"])) == completed
    assert ("|             7 |        1 |           2 |             2 |        256 | 99.10%            "
            "|               0 | 99.10% | -        | -         | -                         | best ") \
        in (out / "accuracy.md").read_text()


def test_default_out_is_the_report_folder_of_the_study(tmp_path):
    write_study(tmp_path, "alpha")
    result = run_report(str(tmp_path), "--study", "alpha")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "alpha" / "report" / "index.html").is_file()


def test_no_folder_or_no_study_is_bad_input(tmp_path):
    missing = run_report(str(tmp_path / "missing"))
    empty = run_report(str(tmp_path))
    for result in (missing, empty):
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "does not exist" in missing.output
    assert "no studies under" in empty.output


def test_study_without_completed_trial_exits_1_with_a_message(tmp_path):
    write_study(tmp_path, "fresh", [t for t in ALPHA_TRIALS if t[0] == "failed"])
    result = run_report(str(tmp_path))
    assert result.exit_code == 1
    assert result.output == ("Error: nothing to report yet: study 'fresh' has no completed trial "
                             "yet (1 trials); skipped\n")


def test_storage_url_reads_studies_from_anywhere_and_writes_to_the_results_folder(tmp_path):
    write_study(tmp_path / "team", "alpha")
    url = f"sqlite:///{tmp_path}/team/alpha/study.db"  # as a PostgreSQL URL would be given
    here = tmp_path / "elsewhere"
    result = run_report(str(here), "--storage", url, "--study", "alpha")
    assert result.exit_code == 0, result.output
    assert (here / "alpha" / "report" / "index.html").is_file()
    accuracy = pd.read_csv(here / "alpha" / "report" / "accuracy.csv")
    assert accuracy["mean"].max() == 0.9910


def test_storage_url_without_a_database_or_the_study_is_bad_input(tmp_path):
    write_study(tmp_path / "team", "alpha")
    url = f"sqlite:///{tmp_path}/team/alpha/study.db"
    for args, message in (([f"sqlite:///{tmp_path}/none.db"], "no study database"),
                          ([url, "--study", "beta"], "no study 'beta'"),
                          (["postgresql://me:secret@127.0.0.1:1/x"], "cannot open storage")):
        result = run_report(str(tmp_path / "out"), "--storage", *args)
        assert result.exit_code == 2, result.output
        assert message in result.output and result.output.count("\n") == 1
        assert "secret" not in result.output
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "out").exists()


def test_a_fresh_clone_reports_the_shipped_reference_answers(tmp_path):
    """No local study, only results/reference/ as a clone ships it: the report is the
    whole-space FAQ answers (a section, not a failure); with a local study it adds them."""
    import shutil
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "results" / "reference"
    shutil.copytree(shipped, tmp_path / "reference")
    result = run_report(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "No local studies" in result.output
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "## The FAQ over the whole space (reference tables)" in summary
    assert "- The faq space at one epoch: 220 configs, 3 seeds each" in summary
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Answers from the reference table (faq space, one epoch, faq-cpu.jsonl)" in page
    answers_at = re.search(r'<h2[^>]*>Answers from the reference table', page).start()
    failing_at = re.search(r'<h2[^>]*>Failing configs', page).start()  # the headings, not the TOC
    assert answers_at < page.index("effect pp (95% CI)", answers_at) < failing_at
    steps = pd.read_csv(tmp_path / "report" / "reference_faq_cpu.csv")
    assert {"knob", "step", "effect_pp", "ci_low_pp", "ci_high_pp", "pairs_won", "verdict",
            "budget", "all_pairs_mean_pp"} <= set(steps.columns)
    block = (tmp_path / "report" / "reference_faq_cpu_answers.md").read_text()
    assert block.startswith("<!-- reference-answers:start -->")
    write_study(tmp_path, "alpha")
    both = run_report(str(tmp_path))
    assert both.exit_code == 0, both.output
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "## FAQ answers" in summary and "## The FAQ over the whole space" in summary


def test_margin_is_given_in_points_and_reaches_the_settings_as_a_fraction():
    """--margin is converted once, at the command line; its default is the settings' own."""
    from bench.cli import confirm, report
    from bench.evidence.settings import ConfirmSettings
    from bench.report import ReportSettings

    assert report.make_context("report", ["--margin", "0.5"]).params["margin"] == 0.005
    assert report.make_context("report", []).params["margin"] == ReportSettings("r").margin
    assert confirm.make_context("confirm", []).params["margin"] == ConfirmSettings().margin
    assert "[default: 0.3; 0<x<=10]" in " ".join(
        CliRunner().invoke(cli, ["report", "--help"], terminal_width=200).output.split())
