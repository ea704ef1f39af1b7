"""SLURM launcher support that lives outside the configs: quieter job polling on clusters without accounting.

submitit polls job states with ``sacct``. A cluster without an accounting database (no ``slurmdbd``, e.g. the
one-node test cluster of ``scripts/slurm_cluster.sh``) answers every poll with an error, and submitit logs a
"Bypassing sacct error" warning each time. It is harmless there: a finished job is recognised by its result file
in ``<sweep_dir>/.submitit/``. The filter below keeps the first warning, explained, and drops the repeats.
"""

from __future__ import annotations

import logging

_SACCT = "Bypassing sacct error"


class SacctWarningFilter(logging.Filter):
    """Passes the first "Bypassing sacct error" record (with an explanation) and drops the later ones."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if _SACCT not in record.getMessage():
            return True
        self.seen += 1
        if self.seen > 1:
            return False
        record.msg = (f"{record.getMessage()} -- sacct is unavailable (no SLURM accounting database?); job ends are "
                      f"read from the result files in .submitit/, and further sacct warnings are not shown")
        record.args = ()
        return True


def quiet_sacct_warnings() -> None:
    """Install the filter on submitit's logger once (idempotent; no-op cost when submitit is not used)."""
    logger = logging.getLogger("submitit")
    if not any(isinstance(f, SacctWarningFilter) for f in logger.filters):
        logger.addFilter(SacctWarningFilter())
