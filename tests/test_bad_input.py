"""Every mistake a user makes is one `Error:` line and exit 2, and changes nothing on disk.

Each row runs the console entry point's `main()` (in this process; one row and the bug test in
a subprocess), in a folder holding a results folder with a study, a compare group, the shipped
reference table and a report already written; a row's setup may damage a file first (a study
database, a journal, a curve table, saved weights). Every file under that folder is hashed
before and after, so a row fails when the refused command created, changed or removed
anything, the old report included. A bug, unlike a mistake, keeps its traceback.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import write_tiny_mnist
from report_studies import write_study

from bench.store import layout

CLI = [sys.executable, "-c", "from bench.cli import main; main()"]
SHIPPED = Path(__file__).resolve().parents[1] / "results" / "reference"
README = Path(__file__).resolve().parents[1] / "README.md"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def run_in_process(args: list[str], cwd: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    """`main()` as the console script runs it, in this process (a subprocess per row costs a
    torch import each): exit code, stdout, stderr. An exception main() does not turn into one
    line escapes, and fails the test with its traceback."""
    from bench.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["mnist-bench", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under `root`, with its content's hash; SQLite's -shm file and an
    empty -wal are left out: an in-process run still holds the database open (a process that
    exits removes them), and an empty log holds no change."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            if path.is_file() else "folder" for path in sorted(root.rglob("*"))
            if not path.name.endswith("-shm")
            and not (path.name.endswith("-wal") and path.stat().st_size == 0)}


def write_journal_group(results: Path, group: str, studies: int) -> None:
    """A compare group as `compare` keeps it: studies named <group>-..., in a journal file."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(layout.study_journal(results, group))))
    for seed in range(studies):
        study = optuna.create_study(study_name=f"{group}-tpe-median-seed{seed}", storage=storage)
        study.set_user_attr("compare", {"group": group, "seed": seed})


@pytest.fixture(scope="module")
def workplace(tmp_path_factory, tiny_mnist) -> Path:
    """A folder as a user has it after search, compare and report; copied for each row."""
    root = tmp_path_factory.mktemp("workplace")
    results = root / "results"
    shutil.copytree(SHIPPED, results / "reference")
    write_study(results, "alpha")
    shutil.copytree(tiny_mnist, root / "data")
    run = layout.finetune_dir(results, "alpha", "trial_2")
    run.mkdir(parents=True)
    (run / layout.FINETUNE_CONFIG).write_text("{}")
    (run / layout.FINETUNE_METRICS).write_text("{}")
    train_only = write_tiny_mnist(root / "train-only", train=300, test=20)
    for path in train_only.glob("t10k-*"):
        path.unlink()
    garbage = write_tiny_mnist(root / "garbage", train=100, test=20, gz=False)
    (garbage / "train-images-idx3-ubyte").write_bytes(b"not an IDX file at all")
    made = run_cli("report", "results", cwd=root)
    assert made.returncode == 0, made.stderr
    assert (results / "report" / "index.html").is_file()
    layout.study_dir(results, "compare-faq").mkdir()  # after the report, which it would not fit
    write_journal_group(results, "compare-faq", 12)
    return root



def damage_pages(path: Path, tables: tuple[str, ...]) -> None:
    """Garbage over the first page of each of `tables` in the SQLite file at `path`: the file
    opens, and the first read of those tables fails."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        pages = [page for (page,) in connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name IN "
            f"({', '.join('?' * len(tables))})", tables)]
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    connection.close()
    data = bytearray(path.read_bytes())
    for page in pages:  # numbered from 1
        data[(page - 1) * page_size : page * page_size] = bytes([0xA5]) * page_size
    path.write_bytes(bytes(data))


def damage(root: Path) -> None:
    """Garbage over the pages of two of alpha's tables: the file opens, and Optuna's first read of
    them fails (where it used to end in a traceback about values "exceeding max length")."""
    damage_pages(root / "results" / "alpha" / "study.db",
                 ("study_user_attributes", "trial_user_attributes"))


def damage_journal(root: Path) -> None:
    """Garbage in the middle of the compare group's journal: a line that is not JSON."""
    path = layout.study_journal(root / "results", "compare-faq")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[len(lines) // 2] = b"\xa5" * 40 + b"\n"
    path.write_bytes(b"".join(lines))


def write_curves(root: Path) -> None:
    """A whole curve table holding the shipped reference rows."""
    from bench.store.curves import CurveTable
    from bench.store.reference import read_reference

    CurveTable(root / "results" / "curves.db").add_rows(
        read_reference(root / "results" / "reference" / "faq-cpu.jsonl"))


def write_damaged_curves(root: Path) -> None:
    """The curve table of write_curves, its curves' pages overwritten."""
    write_curves(root)
    damage_pages(root / "results" / "curves.db", ("curves",))


def write_damaged_weights(root: Path) -> None:
    """A finetune run whose weights file is cut short, its config as finetune writes it."""
    import dataclasses
    import json

    import torch

    from mnist_cnn.model import CNNConfig, build_model

    run = layout.finetune_dir(root / "results", "alpha", "trial_2")
    config = CNNConfig()
    (run / layout.FINETUNE_CONFIG).write_text(json.dumps(dataclasses.asdict(config)))
    torch.save(build_model(config).state_dict(), run / layout.FINETUNE_WEIGHTS)
    weights = (run / layout.FINETUNE_WEIGHTS).read_bytes()
    (run / layout.FINETUNE_WEIGHTS).write_bytes(weights[: len(weights) // 2])
    (run / layout.FINETUNE_EXPORT).write_bytes(weights[: len(weights) // 2])


# (row id, arguments, words the one line must hold, setup before the run)
ROWS = [
    ("train on a GPU this machine lacks", ["train", "--device", "cuda:99"], "cuda:99", None),
    ("train on a device torch does not know", ["train", "--device", "tpu"], "tpu", None),
    ("evaluate on a GPU this machine lacks",
     ["evaluate", "results/alpha/finetune/trial_2", "--device", "cuda:99"], "cuda:99", None),
    ("evaluate a metrics file", ["evaluate", "results/alpha/finetune/trial_2/metrics.json"],
     "is not a saved model", None),
    ("evaluate the README", ["evaluate", str(README)], "is not a saved model", None),
    ("evaluate a folder without a model", ["evaluate", "results/alpha"], "no saved model", None),
    ("report a damaged study database", ["report", "results"], "database disk image is malformed",
     damage),
    ("report into a folder that cannot be made", ["report", "results", "--out",
                                                  "results/alpha/study.db/report"],
     "cannot write the report", None),
    ("report over a folder that is not a report", ["report", "results", "--out", "results/alpha"],
     "holds files that are not a report", None),
    ("report a storage that does not exist",
     ["report", "results", "--storage", "sqlite:////nonexistent/x.db"], "no study database", None),
    ("report a study that does not exist", ["report", "results", "--study", "nope"],
     "no study 'nope'", None),
    ("report a results folder that is a file", ["report", str(README)], "is a file", None),
    ("report a study name with a path", ["report", "results", "--study", "../results"],
     "not a plain name", None),
    ("search a study name that escapes", ["search", "--study-name", "../escape"],
     "not a plain name", None),
    ("search a nested study name", ["search", "--study-name", "a/b"], "not a plain name", None),
    ("search an empty study name", ["search", "--study-name", ""], "not a plain name", None),
    ("search an unknown space", ["search", "--space", "nope", "--results-dir", "new"],
     "unknown space 'nope'", None),
    ("search data that is not there", ["search", "--data-dir", "nowhere", "--results-dir", "new"],
     "nowhere", None),
    ("search a train size larger than the data",
     ["search", "--data-dir", "data", "--validation-size", "200", "--train-size", "5000",
      "--results-dir", "new"], "--train-size 5000", None),
    ("search on a device torch does not know", ["search", "--device", "tpu"], "tpu", None),
    ("train a train size larger than the data",
     ["train", "--data-dir", "data", "--validation-size", "200", "--train-size", "5000",
      "--results-dir", "new"], "--train-size 5000", None),
    ("train on garbage IDX files", ["train", "--data-dir", "garbage", "--results-dir", "new"],
     "is not a valid MNIST IDX file: its header is", None),
    ("merge a file that is not a curve table", ["merge-curves", str(README), "--into", "x.db"],
     "curve table", None),
    ("confirm a compare group", ["confirm", "--study", "compare-faq"], "journal.log", None),
    ("confirm a study that does not exist", ["confirm", "--study", "nope"], "no study 'nope'",
     None),
    ("finetune a trial the study lacks", ["finetune", "--trial", "99", "--study", "alpha"],
     "no trial 99", None),
    ("finetune into a run name with a path", ["finetune", "--best", "--run", "../x"],
     "not a plain name", None),
    ("finetune a train size larger than the data",
     ["finetune", "--best", "--data-dir", "data", "--validation-size", "200", "--train-size",
      "5000"], "--train-size 5000", None),
    ("compare a group name with a path", ["compare", "--group", "a/b"], "not a plain name", None),
    ("confirm a damaged study", ["confirm", "--study", "alpha"], "results/alpha/study.db", damage),
    ("confirm the default study, damaged", ["confirm"], "results/alpha/study.db", damage),
    ("finetune the best of a damaged study", ["finetune", "--best", "--study", "alpha"],
     "results/alpha/study.db", damage),
    ("finetune the default study, damaged", ["finetune", "--best"], "results/alpha/study.db",
     damage),
    ("search resuming a damaged study",
     ["search", "--study-name", "alpha", "--data-dir", "data", "--validation-size", "200",
      "--train-size", "200", "--trials", "1"], "results/alpha/study.db", damage),
    ("compare with a damaged journal",
     ["compare", "--group", "compare-faq", "--data-dir", "data", "--validation-size", "200",
      "--train-size", "200", "--seeds", "1", "--trials", "1"], "journal.log", damage_journal),
    ("compare with a damaged storage",
     ["compare", "--storage", "sqlite:///results/alpha/study.db", "--data-dir", "data",
      "--validation-size", "200", "--train-size", "200", "--seeds", "1", "--trials", "1"],
     "results/alpha/study.db", damage),
    ("merge a damaged curve table", ["merge-curves", "results/curves.db", "--into", "x.db"],
     "results/curves.db", write_damaged_curves),
    ("merge into a damaged curve table",
     ["merge-curves", "results/reference/faq-cpu.jsonl", "--into", "results/curves.db"],
     "results/curves.db", write_damaged_curves),
    ("search with a damaged curve table",
     ["search", "--space", "faq", "--data-dir", "data", "--validation-size", "200",
      "--train-size", "200", "--trials", "1"], "results/curves.db", write_damaged_curves),
    ("evaluate weights cut short", ["evaluate", "results/alpha/finetune/trial_2/weights.pt"],
     "weights.pt", write_damaged_weights),
    ("evaluate an export cut short", ["evaluate", "results/alpha/finetune/trial_2"],
     "model.pt2", write_damaged_weights),
    ("speed on garbage IDX files", ["speed", "--data-dir", "garbage"],
     "is not a valid MNIST IDX file", None),
    ("figures on garbage IDX files", ["figures", "--data-dir", "garbage", "--results-dir", "new",
                                      "--out", "new.json"], "is not a valid MNIST IDX file", None),
    ("report a damaged compare journal", ["report", "results"],
     "compare journal results/compare-faq/journal.log is damaged", damage_journal),
    ("report a curve table as the storage",
     ["report", "results", "--storage", "sqlite:///results/curves.db"],
     "results/curves.db is not a study database", write_curves),
    ("search on a curve table as the storage",
     ["search", "--storage", "sqlite:///results/curves.db", "--data-dir", "data", "--validation-size", "200", "--train-size", "200"],
     "results/curves.db is not a study database", write_curves),
    ("search replaying from a study database",
     ["search", "--replay", "results/alpha/study.db", "--data-dir", "data", "--validation-size", "200", "--train-size", "200"],
     "results/alpha/study.db is not a curve table", None),
    ("merge into a study database",
     ["merge-curves", "results/reference/faq-cpu.jsonl", "--into", "results/alpha/study.db"],
     "results/alpha/study.db is not a curve table", None),
    ("search resuming a study at another fidelity",
     ["search", "--study-name", "alpha", "--epochs", "3", "--data-dir", "data", "--validation-size", "200", "--train-size", "200"], "use the same settings",
     None),
    ("search into a folder that cannot be made",
     ["search", "--results-dir", "/proc/mnist-bench", "--data-dir", "data", "--validation-size", "200", "--train-size", "200"], "cannot create /proc/mnist-bench",
     None),
    ("train into a folder that cannot be made",
     ["train", "--results-dir", "/proc/mnist-bench", "--data-dir", "data", "--validation-size", "200", "--train-size", "200"], "cannot create /proc/mnist-bench",
     None),
    ("train --test without test files",
     ["train", "--test", "--data-dir", "train-only", "--validation-size", "100", "--results-dir",
      "new"], "t10k-images-idx3-ubyte", None),
    ("finetune without test files",
     ["finetune", "--best", "--data-dir", "train-only", "--validation-size", "100"],
     "t10k-images-idx3-ubyte", None),
    ("figures into a folder that cannot be made",
     ["figures", "--results-dir", "/proc/mnist-bench", "--out", "new.json", "--data-dir", "data", "--validation-size", "200", "--train-size", "200"],
     "cannot create /proc/mnist-bench", None),
    ("figures writing under a file",
     ["figures", "--out", "results/alpha/study.db/figures.json", "--results-dir", "new", "--data-dir", "data", "--validation-size", "200", "--train-size", "200"],
     "cannot create results/alpha/study.db", None),
]


@pytest.mark.parametrize("args, words, setup", [row[1:] for row in ROWS],
                         ids=[row[0] for row in ROWS])
def test_a_mistake_is_one_line_exit_2_and_changes_nothing(args, words, setup, workplace,
                                                          tmp_path, monkeypatch, capsys):
    root = tmp_path / "workplace"
    shutil.copytree(workplace, root)
    if setup is not None:
        setup(root)
    before = snapshot(root)
    code, out, err = run_in_process(args, root, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err and out == ""
    assert words in lines[0]
    assert snapshot(root) == before


def test_the_console_script_gives_the_same_one_line(workplace, tmp_path):
    """One row through a real subprocess: what a shell sees."""
    shutil.copytree(workplace, tmp_path / "workplace")
    before = snapshot(tmp_path / "workplace")
    result = run_cli("report", "results", "--storage", "sqlite:////nonexistent/x.db",
                     cwd=tmp_path / "workplace")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "Error: no study database /nonexistent/x.db\n"
    assert snapshot(tmp_path / "workplace") == before  # the report before it, byte for byte


def test_a_compare_group_listing_is_short_and_names_its_journal(workplace, tmp_path):
    shutil.copytree(workplace, tmp_path / "workplace")
    result = run_cli("confirm", "--study", "compare-faq", cwd=tmp_path / "workplace")
    assert "is a compare group" in result.stderr and "results/compare-faq/journal.log" in result.stderr
    assert "and 6 more" in result.stderr and result.stderr.count("compare-faq-tpe-median") == 6


def test_no_arguments_prints_the_help_not_an_error(tmp_path):
    result = run_cli(cwd=tmp_path)
    assert "Usage:" in result.stderr and "Error" not in result.stderr
    assert "search" in result.stderr and list(tmp_path.iterdir()) == []


def test_help_says_what_the_readme_says():
    from click.testing import CliRunner

    from bench.cli import cli
    from bench.search.spaces import shipped_space_names

    search = CliRunner().invoke(cli, ["search", "--help"], terminal_width=200).output
    compare = CliRunner().invoke(cli, ["compare", "--help"], terminal_width=200).output
    readme = README.read_text() + (README.parent / "docs" / "usage.md").read_text()  # the options
    assert all(name in search for name in shipped_space_names()) and "speedrun" in search
    assert "Proposes each trial's config" in search  # --sampler has help
    assert "compare: one per available core" in compare and "[default: 1]" not in compare
    assert "<results-dir>/<group>/journal.log" in compare
    assert "-> logits" in readme and "leaves the validation cost as it is" in readme


def test_the_default_study_is_the_searched_one_not_a_compare_group_or_confirm(workplace, tmp_path):
    """`confirm` and `finetune` after `compare` in one results folder, or on one storage."""
    from bench.store.studies import StudySource

    assert StudySource(workplace / "results").choose(None) == "alpha"
    url = f"sqlite:///{tmp_path}/team.db"
    for name, attrs in (("alpha", {}), ("alpha-confirm", {"confirm_of": "alpha"}),
                        ("compare-faq-tpe-median-seed0", {"compare": {"seed": 0}})):
        study = optuna.create_study(study_name=name, storage=url)
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    assert StudySource(tmp_path, url).choose(None) == "alpha"


def test_a_shared_storage_with_a_study_no_folder_can_take_still_reports_the_others(tmp_path):
    """Another user's study named "team/x" in the same PostgreSQL or SQLite storage is left out
    of what this machine reports, not a failure of every report of the storage."""
    from bench.store.studies import StudySource

    url = f"sqlite:///{tmp_path}/team.db"
    for name in ("alpha", "team/x"):
        optuna.create_study(study_name=name, storage=url)
    loaded = StudySource(tmp_path / "results", url).load_related(None)
    assert [study.study_name for _, study in loaded] == ["alpha"]


def test_an_unexpected_error_is_a_bug_and_keeps_its_traceback(workplace, tmp_path):
    """A bug is not bad input: its exception is not turned into one line or exit 2. Here
    `report`'s library call raises a KeyError, as a bug would; Python prints the whole
    traceback and exits 1."""
    shutil.copytree(workplace, tmp_path / "workplace")
    broken = ("import bench.report; "
              "bench.report.build_report = lambda settings: {}['a bug']; "
              "from bench.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", broken, "report", "results"],
                            capture_output=True, text=True, cwd=tmp_path / "workplace",
                            timeout=300)
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().endswith("KeyError: 'a bug'")
    assert not any(line.startswith("Error: ") for line in result.stderr.splitlines())
