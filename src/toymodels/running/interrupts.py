"""Ctrl-C and SIGTERM during training: the first one asks the running group to save its state and stop after the
current step; a second Ctrl-C stops at once (Python's default behaviour comes back after the first signal).

Example:
    >>> with StopOnSignal() as stop:          # doctest: +SKIP
    ...     train_group(cfgs, should_stop=stop.requested, on_state=save)
"""

from __future__ import annotations

import signal
import threading

#: the exit status a shell reports for a process ended by each signal (128 + signal number)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopOnSignal:
    """While active (main thread only), SIGINT and SIGTERM set a flag instead of ending the process."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        for sig, old in self._previous.items():  # the next signal acts at once
            signal.signal(sig, old)

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in EXIT_CODES:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig, old in self._previous.items():
                signal.signal(sig, old)
        self._previous.clear()
