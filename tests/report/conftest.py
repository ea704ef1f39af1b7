"""Fixtures for the report tests: synthetic run directories with known numbers."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import CORRECT, RunWriter, make_record

from cfnsr.runs.record import write_record


@pytest.fixture
def write_run(tmp_path: Path) -> RunWriter:
    """Write one record into a fresh numbered run directory under ``tmp_path/<root>``; returns the file."""
    counter = itertools.count()

    def _write(*args: Any, root: str = "multirun", **kwargs: Any) -> Path:
        run_dir = tmp_path / root / str(next(counter))
        return write_record(run_dir, make_record(*args, run_dir=str(run_dir), **kwargs))

    return _write


@pytest.fixture
def sweep(tmp_path: Path, write_run: RunWriter) -> Path:
    """A 3-fusion sweep (cfnsr 3 folds x 2 seeds, msaf and averaging 3 folds x 1 seed) plus one failed and one
    running run; returns the sweep directory."""
    for (fusion, fold, seed), correct in CORRECT.items():
        write_run(fusion, fold, seed, correct)
    failed = make_record("msaf", 4, 1, 100, status="failed")
    failed["error"] = "CUDA out of memory"
    write_record(tmp_path / "multirun" / "failed", failed)
    write_record(tmp_path / "multirun" / "running", make_record("cfnsr", 4, 1, 100, status="running"))
    return tmp_path / "multirun"
