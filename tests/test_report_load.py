"""bench/report/load.py: studies come back from storage with the states and epochs the search wrote."""

from __future__ import annotations

import pytest
from report_studies import write_finetune, write_study

from bench.report.load import (
    NothingToReport, load_studies, trials_frame, with_completed_trials,
)
from bench.store.damage import DamagedFile
from bench.store.studies import StudyNotFound, StudySource


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    write_study(root, "alpha")
    write_finetune(root, "alpha", "best", trial_number=2)
    (root / "not-a-study").mkdir()  # a folder without study.db is ignored
    return root


def test_trials_keep_their_states_and_pruned_epochs(results):
    (alpha,) = load_studies(StudySource(results))
    trials = alpha.trials.set_index("trial")
    assert list(trials["state"]) == ["complete", "complete", "complete", "pruned", "pruned",
                                     "invalid", "failed"]
    assert trials.loc[3, "pruned_at_epoch"] == 1.0
    assert trials.loc[4, "pruned_at_epoch"] == 2.0
    assert trials.loc[5, "invalid_reason"].startswith("feature map collapses")
    assert trials.loc[2, "validation_accuracy"] == 0.9910
    assert trials.loc[1, "flops_per_image"] == 2_000_000
    assert trials.loc[0, "planned_epochs"] == 3
    assert trials.loc[0, "channels"] == "32,64"


def test_finetune_metrics_are_attached_to_their_study(results):
    (alpha,) = load_studies(StudySource(results))
    assert [run["run"] for run in alpha.finetune] == ["best"]
    assert alpha.finetune[0]["test_accuracy_mean"] == 0.9921


def test_missing_folder_no_study_and_unknown_name_are_bad_input(results, tmp_path):
    with pytest.raises(StudyNotFound, match="does not exist"):
        load_studies(StudySource(tmp_path / "missing"))
    with pytest.raises(StudyNotFound, match="no studies under"):
        load_studies(StudySource(tmp_path))
    with pytest.raises(StudyNotFound, match=r"no study 'beta'.*alpha"):
        load_studies(StudySource(results), "beta")


def test_damaged_storage_is_named_in_one_line(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "study.db").write_text("not a database")
    with pytest.raises(DamagedFile, match="broken/study.db is not a study database") as raised:
        load_studies(StudySource(tmp_path))
    assert "\n" not in str(raised.value)


def test_a_study_without_completed_trials_is_skipped_or_refused(results, tmp_path):
    from report_studies import ALPHA_TRIALS

    write_study(tmp_path, "only-pruned", [t for t in ALPHA_TRIALS if t[0] != "complete"])
    with pytest.raises(NothingToReport, match="only-pruned"):
        with_completed_trials(load_studies(StudySource(tmp_path)))
    write_study(tmp_path, "good")
    kept, notes = with_completed_trials(load_studies(StudySource(tmp_path)))
    assert [s.name for s in kept] == ["good"]
    assert "only-pruned" in notes[0]


def test_empty_study_gives_an_empty_frame(tmp_path):
    import optuna

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    assert trials_frame(study).empty
