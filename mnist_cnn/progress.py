"""Progress bars: tqdm's bar on a terminal; in a log, a plain line every few seconds.

Every command's bar is made here. tqdm redraws its bar with carriage returns, which a log file
keeps as one endless line; when the output is not a terminal, `LogLines` writes instead one line
(done, total, elapsed, ETA) at most every LOG_INTERVAL seconds, and one at the end.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from tqdm import tqdm

LOG_INTERVAL = 10.0  # seconds between two lines of progress in a log
LOG_FORMAT = ("{{desc}}: {{n_fmt}}/{{total_fmt}} {units} done, {{elapsed}} elapsed, "
              "ETA {{remaining}}{{postfix}}")


def plural(noun: str) -> str:
    """'run' -> 'runs', 'batch' -> 'batches', 'study' -> 'studies' (the nouns bars count)."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "o", "u"):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


class LogLines(tqdm):
    """A tqdm that writes whole lines: at the start, at most every LOG_INTERVAL seconds, and
    when it is closed. tqdm documents `display` as the method to overload for another output."""

    def __init__(self, *args, unit: str = "it", **kwargs) -> None:
        self._written_at: float | None = None
        units = plural(unit)
        super().__init__(*args, unit=unit, bar_format=LOG_FORMAT.format(units=units),
                         mininterval=LOG_INTERVAL, dynamic_ncols=False, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        now = time.monotonic()
        if self._written_at is not None and now - self._written_at < LOG_INTERVAL:
            return True
        self._write_line()
        return True

    def clear(self, nolock: bool = False) -> None:
        """Nothing to erase: a written line stays (tqdm.write calls this around its message)."""

    def close(self) -> None:
        if not self.disable:
            self._write_line()  # the final count, whenever the last line was written
            self.disable = True  # tqdm's own close would redraw with a carriage return
        super().close()

    def _write_line(self) -> None:
        self._written_at = time.monotonic()
        self.fp.write(self.__str__() + "\n")
        self.fp.flush()


def progress_bar(total: int, desc: str, unit: str, initial: int = 0,
                 file: IO[str] | None = None) -> tqdm:
    """tqdm's bar when `file` (stderr by default) is a terminal, else `LogLines`."""
    stream = file or sys.stderr
    kind = tqdm if stream.isatty() else LogLines
    options = {"dynamic_ncols": True} if kind is tqdm else {}
    return kind(total=total, initial=initial, desc=desc, unit=unit, file=stream, **options)
