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


@contextmanager
def replacing(folder: Path) -> Iterator[Path]:
    """A new empty folder to write the report in; when the block ends without an error it
    becomes `folder` (the old one removed), otherwise it is removed. It is made in the nearest
    folder above `folder` that exists (the same file system, so the swap is a rename), and the
    folders between are made only when the report is complete."""
    folder = Path(folder).absolute()
    existing = next(parent for parent in folder.parents if parent.exists())
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=existing))
        os.chmod(staging, 0o755)  # mkdtemp's folder is private; a report is for reading
    except OSError as error:
        raise ReportFolderError(f"cannot write the report to {folder}: "
                                f"{error.strerror or error}") from None
    try:
        yield staging
        folder.parent.mkdir(parents=True, exist_ok=True)
        _swap(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the swap succeeded


def _swap(staging: Path, folder: Path) -> None:
    """Put `staging` in `folder`'s place; the old folder is moved aside first and put back if
    the move fails, so at every moment one whole report is there."""
    if folder.exists() and not folder.is_dir():
        raise ReportFolderError(f"cannot write the report to {folder}: it is a file")
    aside = None
    if folder.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        os.replace(folder, aside / folder.name)
    try:
        os.replace(staging, folder)
    except OSError:
        if aside is not None:
            os.replace(aside / folder.name, folder)
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
