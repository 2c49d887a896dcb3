"""Whether a stored file (a study database, a curve table, a compare group's journal) can be read,
checked before a command writes anything: a damaged file is one line of bad input that names it
and says what to do, never a traceback from deep inside Optuna or SQLite, nor a half-made run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

STUDY_ADVICE = ("restore it from a copy, or move it aside (a search then starts its study afresh; "
                "report reports the others)")
STUDY_TABLES = {"studies", "trials"}  # Optuna's, in every version of its schema
CURVE_TABLE_ADVICE = ("restore it from a copy, or move it aside (a new table starts empty; "
                      "`mnist-bench merge-curves` adds the rows of a good copy)")


def error_line(error: BaseException) -> str:
    """An error in one line: its message's first line, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class DamagedFile(ValueError):
    """A stored file that is there but cannot be read: bad input, with what to do about it."""


def check_sqlite_file(path: Path | str, what: str, advice: str, tables: set[str]) -> None:
    """Refuse a SQLite file that is not one, whose pages are damaged (SQLite's quick_check,
    read-only), or that holds other tables than `tables` (another program's database, which
    opening it as this would write into); a file that is not there is made when first written."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    except sqlite3.OperationalError:
        return  # cannot even be opened (permissions): the real open says so
    found: set[str] = set()
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        found = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError:
        return  # locked or unopenable, not damaged: the real open says so
    except sqlite3.DatabaseError as error:  # "file is not a database", "... malformed"
        problems = [str(error)]
    finally:
        connection.close()
    if problems == ["file is not a database"]:
        raise DamagedFile(f"{path} is not a {what}: it is not a SQLite database")
    if problems != ["ok"]:
        lines = [line for problem in problems for line in problem.strip().splitlines()
                 if not line.startswith("***")]  # "*** in database main ***" names no fault
        reason = lines[0] if lines else "damaged"
        raise DamagedFile(f"{what} {path} is damaged ({reason}); {advice}")
    if found and not tables <= found:
        raise DamagedFile(f"{path} is not a {what}: it holds the tables {', '.join(sorted(found))}")


def check_curve_table(path: Path | str) -> None:
    """A damaged curve table refused before a command that records curves writes anything."""
    check_sqlite_file(path, "curve table", CURVE_TABLE_ADVICE, {"curves"})


def journal_damage(path: Path | str, error: ValueError) -> DamagedFile:
    """The one-line error for a journal file Optuna could not replay (a line that is not JSON)."""
    return DamagedFile(f"compare journal {path} is damaged ({error_line(error)}); restore it "
                       "from a copy, or move it aside (compare then runs the group's studies "
                       "again)")
