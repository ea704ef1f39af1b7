"""The one hook cfnsr adds to Lightning's callbacks: the end of the whole run, with its record."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytorch_lightning as pl


class RunEndCallback(pl.Callback):
    """A callback told when the run is over (fit and tests done, or failed), with the run record.

    Lightning's hooks end with ``trainer.fit``; the tests of the selected and the last checkpoint run afterwards on
    a logger-free trainer, so the record with the test results exists only after Lightning's last hook.
    """

    def on_run_end(self, record: dict[str, Any]) -> None:
        """Called once per run on every rank, also when the run failed (``record["status"] == "failed"``)."""


def run_end(callbacks: Iterable[Any], record: dict[str, Any]) -> None:
    """Call ``on_run_end(record)`` of each :class:`RunEndCallback` in ``callbacks``."""
    for cb in callbacks:
        if isinstance(cb, RunEndCallback):
            cb.on_run_end(record)
