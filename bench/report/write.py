"""The report's folder is replaced whole: written in a new folder beside it, then swapped in.

A report that fails (bad input, nothing to report, an interrupt) leaves the previous report byte
for byte as it was and no half-written folder, and a report never mixes files of two runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class ReportFolderError(ValueError):
    """The report's folder cannot be written: bad input (an --out where one cannot write)."""


MARKER = ".mnist-bench-report"  # in every report folder: only such a folder is ever replaced
REPORT_SUFFIXES = (".html", ".md", ".csv")  # what a report writes (a report made before MARKER)


@contextmanager
def replacing(folder: Path) -> Iterator[Path]:
    """A new empty folder to write the report in; when the block ends without an error it
    becomes `folder` (the old one removed), otherwise it is removed. It is made in the nearest
    folder above `folder` that exists (the same file system, so the swap is a rename), and the
    folders between are made only when the report is complete. A `folder` that holds anything
    but a report is refused before anything is written: it is never replaced."""
    folder = Path(folder).absolute()
    _check_replaceable(folder)
    existing = next(parent for parent in folder.parents if parent.exists())
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=existing))
    except OSError as error:
        raise ReportFolderError(f"cannot write the report to {folder}: "
                                f"{error.strerror or error}") from None
    try:
        os.chmod(staging, 0o755)  # mkdtemp's folder is private; a report is for reading
        (staging / MARKER).write_text("written by mnist-bench report; replaced whole by the next\n")
        yield staging
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ReportFolderError(f"cannot write the report to {folder}: "
                                    f"{error.strerror or error}") from None
        _swap(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the swap succeeded


def _check_replaceable(folder: Path) -> None:
    """Refuse a file, or a folder with anything in it that a report did not write."""
    if folder.exists() and not folder.is_dir():
        raise ReportFolderError(f"cannot write the report to {folder}: it is a file")
    if not folder.is_dir() or (folder / MARKER).exists():
        return
    entries = list(folder.iterdir())
    made_by_report = any(entry.name == "index.html" for entry in entries) and all(
        entry.is_file() and entry.suffix in REPORT_SUFFIXES for entry in entries)
    if entries and not made_by_report:
        raise ReportFolderError(f"{folder} holds files that are not a report, and the report "
                                "replaces its folder whole: give --out a new or empty folder")


def _swap(staging: Path, folder: Path) -> None:
    """Put `staging` in `folder`'s place; the old folder is moved aside first and put back if
    the move fails, so at every moment one whole report is there. The old one is removed only
    once the new one is in place."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    try:
        os.replace(folder, aside / folder.name)
    except BaseException:
        os.rmdir(aside)
        raise
    try:
        os.replace(staging, folder)
    except BaseException:
        os.replace(aside / folder.name, folder)  # the old report back where it was
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)
