"""The run record of a training job while it runs: one object that owns ``metrics.json`` (schema: ``cfnsr.runs.record``).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cfnsr.files import describe_os_error, environment_error
from cfnsr.runs.interrupt import Interrupted, interrupted_fields
from cfnsr.runs.record import FILENAME, write_record


class RunRecord:
    """The ``metrics.json`` of one training job, and its only writer.

    The job adds fields as it learns them (:meth:`update`) and writes the file at each change of status:
    :meth:`start` ("running", or "debug"/"finished" later), :meth:`fail` ("failed", plus ``error.txt``; "pruned"
    for a search trial its pruner stopped), :meth:`interrupted` (a signal: "interrupted" with the resume command),
    :meth:`finish`. Only the process given ``write=True`` (global rank 0) writes; every process keeps the fields,
    so each can hand the record to its callbacks. After :meth:`start`, every later status also records
    ``train_seconds``.

    Args:
        run_dir: the run folder.
        fields: the first fields (run id, folder, SLURM job id).
        write: whether this process writes the file.
        program: names the program in console lines about a failing disk.
    """

    def __init__(self, run_dir: str | Path, fields: dict[str, Any], write: bool, program: str = "train.py") -> None:
        self.run_dir = Path(run_dir)
        self.fields: dict[str, Any] = dict(fields)
        self.write = write
        self.program = program
        self._started: float | None = None

    def update(self, **fields: Any) -> None:
        """Add or replace fields without writing the file."""
        self.fields.update(fields)

    def start(self, **fields: Any) -> None:
        """The job starts training: status "running" and ``fields``; the clock of ``train_seconds`` starts."""
        self.fields.update({"status": "running", "error": None, **fields})
        self._save()
        self._started = time.time()

    def fail(self, exc: BaseException, pruned: bool = False, traceback_file: bool = True) -> None:
        """Status "failed" (or "pruned") with the error; a failed record gets ``error.txt`` (the traceback) beside
        it when ``traceback_file``, and a console line when the disk or machine caused the failure."""
        self._clock()
        self.fields.update(status="pruned" if pruned else "failed", error=f"{type(exc).__name__}: {exc}")
        if pruned or not self.write:
            self._save()
            return
        env = environment_error(exc)
        if env is not None:
            print(f"{self.program}: the run failed on its disk: {describe_os_error(env)}", file=sys.stderr, flush=True)
        path = self.run_dir / FILENAME
        try:
            self._save()
        except OSError as werr:
            print(f"{self.program}: the run failed and its record could not be written: "
                  f"{describe_os_error(werr, path)}; {path} should say status {self.fields['status']!r}",
                  file=sys.stderr, flush=True)
            return
        if traceback_file:
            self._write_traceback(exc)

    def interrupted(self, exc: Interrupted) -> None:
        """Status "interrupted": the signal and the command that resumes the job (``cfnsr.runs.interrupt``)."""
        self._clock()
        self.fields.update(interrupted_fields(exc, self.run_dir))
        self._save()

    def finish(self, status: str = "finished", **fields: Any) -> None:
        """The job is done: ``status`` ("finished", or "debug" for a run that saw part of the data), the
        ``finished_at`` time and ``fields``."""
        self._clock()
        self.fields.update(status=status, **fields,
                           finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self._save()

    @contextmanager
    def watching(self, pruned: tuple[type[BaseException], ...] = (),
                 traceback_file: bool = True) -> Iterator[None]:
        """Records how the block ended if it raised, then re-raises: :meth:`interrupted` for a signal, "pruned"
        for an exception of a ``pruned`` type (not a failure), else :meth:`fail`."""
        try:
            yield
        except Interrupted as exc:
            self.interrupted(exc)
            raise
        except BaseException as exc:
            self.fail(exc, pruned=isinstance(exc, pruned), traceback_file=traceback_file)
            raise

    def _clock(self) -> None:
        if self._started is not None:
            self.fields["train_seconds"] = round(time.time() - self._started, 1)

    def _save(self) -> None:
        if self.write:
            write_record(self.run_dir, self.fields)

    def _write_traceback(self, exc: BaseException) -> None:
        path = self.run_dir / "error.txt"
        try:
            path.write_text("".join(traceback.format_exception(exc)))
        except OSError as werr:
            print(f"{self.program}: could not write {path}: {describe_os_error(werr)}", file=sys.stderr, flush=True)
            path.unlink(missing_ok=True)
