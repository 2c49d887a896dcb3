"""Stopping on Ctrl-C or SIGTERM without losing what finished: one guard for every long command."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class SearchInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived during a trial; the trial is recorded as FAIL."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def exit_code(signum: int | None) -> int:
    """128 + the signal, as a shell reports a command it stopped; 0 when none stopped it."""
    return 128 + signum if signum else 0


class SignalGuard:
    """The first SIGINT/SIGTERM raises SearchInterrupted inside a trial (`in_trial`), else is
    kept in `received` for the caller to stop at its next step: the search between trials,
    compare between studies, confirm at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.in_trial = False
        self._in_storage = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():  # where Python allows handlers
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            return  # already stopping; let the cleanup finish
        self.received = signum
        if self.in_trial and not self._in_storage:
            raise SearchInterrupted(signum)

    @contextmanager
    def storage_section(self):
        """A storage write is never cut in half: a signal during it is raised right after."""
        self._in_storage = True
        try:
            yield
        finally:
            self._in_storage = False
        if self.received is not None and self.in_trial:
            raise SearchInterrupted(self.received)
