"""The SLURM polling-log filter: one explained sacct warning, then silence; other submitit records untouched."""

from __future__ import annotations

import logging

import pytest

from cfnsr.runs.slurm_polling import SacctWarningFilter, quiet_sacct_warnings


def test_repeated_sacct_warnings_are_shown_once(caplog: pytest.LogCaptureFixture):
    log = logging.getLogger("submitit")
    for f in [f for f in log.filters if isinstance(f, SacctWarningFilter)]:
        log.removeFilter(f)  # a fresh filter: it counts the warnings it has seen
    quiet_sacct_warnings()
    quiet_sacct_warnings()  # idempotent: one filter
    assert len(log.filters) == 1
    with caplog.at_level(logging.INFO, logger="submitit"):
        for call in (1, 2, 3):
            log.warning(f"Call #{call} - Bypassing sacct error Command '['sacct', ...]' returned non-zero exit "
                        f"status 1., status may be inaccurate.")
        log.info("Job completed successfully")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("Call #1 - Bypassing sacct error") and "accounting" in messages[0]
    assert messages[1] == "Job completed successfully"
