"""The storage of an Optuna study, named by one string: a journal file path or an RDB URL.

A low-level module so that both the search's sweeper (``cfnsr.search``) and a trial job's reporting callback
(``cfnsr.callbacks.trial_report``) open a study the same way. Optuna is imported only when a storage is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

JOURNAL_NAME = "optuna.journal"  # the default storage in a sweep folder: Optuna's journal file (NFS-safe, no server)


def study_storage(storage: str | None, sweep_dir: str | Path) -> str:
    """``search.storage`` as used: the setting, or ``<sweep_dir>/optuna.journal`` when it is null."""
    return str(storage) if storage else str(Path(sweep_dir) / JOURNAL_NAME)


def is_url(storage: str) -> bool:
    """An RDB URL (``sqlite:///...``, ``postgresql://...``); anything else names a journal file."""
    return "://" in storage


def open_storage(storage: str) -> Any:
    """``JournalStorage(JournalFileBackend(path))`` for a journal file (its folder is created when missing; the
    path is made absolute, so every worker that starts in the same folder opens the same file), ``RDBStorage(url)``
    for a URL (needs SQLAlchemy)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if is_url(storage):
        return optuna.storages.RDBStorage(storage)
    path = Path(storage).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))
