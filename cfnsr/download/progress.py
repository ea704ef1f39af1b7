"""One progress display for all files of a download: a Rich bar with bytes and rate on a terminal; off a terminal
(a pipe, a log file, a SLURM job) one line per finished file, so logs get no frozen bar redraws (as
``cfnsr/console.py`` does for training, without importing Lightning)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class DownloadProgress:
    """Thread-safe byte counter over all files. Use as a context manager; ``advance`` from any worker thread."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream or getattr(sys.stdout, "terminal", sys.stdout)  # console_to_log keeps the real one
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        self.cancelled = False

    def __enter__(self) -> DownloadProgress:
        if _isatty(self.stream):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(TextColumn("download"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=Console(file=self.stream))
            self._bar.start()
            self._task = self._bar.add_task("download", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def cancel(self) -> None:
        """Make every worker stop at its next block (Ctrl-C or an unexpected error in one of them)."""
        self.cancelled = True

    def advance(self, n: int) -> None:
        """``n`` more bytes arrived (negative: a restart discarded bytes). After ``cancel`` raises
        ``KeyboardInterrupt`` in the worker, so a partial file stops growing and stays resumable."""
        if self.cancelled and n > 0:
            raise KeyboardInterrupt("download cancelled")
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(self._task, completed=self.done)

    def file_done(self, name: str, size: int, seconds: float) -> None:
        """Off a terminal: ``<name>: 512.0 MiB in 41 s (12.5 MiB/s); 3.1 of 12.4 GiB``."""
        if self._bar is not None:
            return
        rate = size / seconds if seconds > 0 else 0.0
        with self._lock:
            print(f"{name}: {_mib(size)} in {seconds:.0f} s ({_mib(rate)}/s); {_mib(self.done)} of "
                  f"{_mib(self.total)} done", file=self.stream, flush=True)

    def note(self, line: str) -> None:
        """A message that does not break the bar."""
        if self._bar is not None:
            self._bar.console.print(line)
        else:
            print(line, file=self.stream, flush=True)
