"""bench.report.write: a report replaces its own folder whole, and nothing else."""

from __future__ import annotations

import pytest

from bench.report.write import MARKER, ReportFolderError, replacing


def tree(folder) -> dict[str, str]:
    return {str(path.relative_to(folder)): path.read_text()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_folder_holding_anything_but_a_report_is_refused_and_left_as_it_was(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ReportFolderError, match="holds files that are not a report"):
        with replacing(mine) as staging:
            (staging / "index.html").write_text("new")
    assert tree(mine) == {"thesis.tex": "years of work"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # no staging left


def test_a_report_made_before_the_marker_is_replaced_whole(tmp_path):
    old = tmp_path / "report"
    old.mkdir()
    for name in ("index.html", "summary.md", "regret.csv"):
        (old / name).write_text("old")
    with replacing(old) as staging:
        (staging / "index.html").write_text("new")
    assert tree(old) == {"index.html": "new", MARKER: (old / MARKER).read_text()}
    with replacing(old) as staging:  # and again, now that it carries the marker
        (staging / "summary.md").write_text("newer")
    assert set(tree(old)) == {"summary.md", MARKER}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


@pytest.mark.parametrize("failure", [RuntimeError("failed"), KeyboardInterrupt()])
def test_a_failing_or_interrupted_report_leaves_the_old_one_and_no_temporary_folder(tmp_path,
                                                                                     failure):
    old = tmp_path / "report"
    old.mkdir()
    (old / "index.html").write_text("old")
    with pytest.raises(type(failure)):
        with replacing(old) as staging:
            (staging / "index.html").write_text("half")
            raise failure
    assert tree(old) == {"index.html": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_new_folder_and_its_parents_are_made_only_when_the_report_is_whole(tmp_path):
    target = tmp_path / "a" / "b" / "report"
    with pytest.raises(RuntimeError):
        with replacing(target):
            raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == []
    with replacing(target) as staging:
        (staging / "index.html").write_text("new")
    assert tree(target)["index.html"] == "new"
