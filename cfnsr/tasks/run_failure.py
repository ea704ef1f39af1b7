"""Leaving a failed run's record when the failure may be the disk itself (ENOSPC, EIO, a read-only file system).

The record (``metrics.json``) and ``error.txt`` are written as usual; when the disk or machine caused the failure, one
line naming the full path and its file system goes to the console, and when the record itself cannot be written, one
line says where it should have been (its old content, "running", is then stale).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from cfnsr.files import describe_os_error, environment_error
from cfnsr.runs.record import FILENAME, write_record


def record_failure(out: Path, record: dict[str, Any], exc: BaseException, program: str = "train.py") -> None:
    """Write ``record`` (status failed) and ``error.txt`` into ``out``; say on stderr what the disk did."""
    env = environment_error(exc)
    if env is not None:
        print(f"{program}: the run failed on its disk: {describe_os_error(env)}", file=sys.stderr, flush=True)
    try:
        write_record(out, record)
    except OSError as werr:
        print(f"{program}: the run failed and its record could not be written: "
              f"{describe_os_error(werr, out / FILENAME)}; {out / FILENAME} should say status {record['status']!r}",
              file=sys.stderr, flush=True)
        return
    try:
        (out / "error.txt").write_text("".join(traceback.format_exception(exc)))
    except OSError as werr:
        print(f"{program}: could not write {out / 'error.txt'}: {describe_os_error(werr)}", file=sys.stderr,
              flush=True)
        (out / "error.txt").unlink(missing_ok=True)
