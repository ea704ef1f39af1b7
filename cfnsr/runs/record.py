"""The per-run record ``<run_dir>/metrics.json``: what a finished, failed or interrupted training job leaves on disk.

The report (``cfnsr.report``) rebuilds every table from these files alone. This module writes records of schema
:data:`SCHEMA_VERSION` and reads :data:`READABLE_SCHEMAS`. The fields, the statuses and what each means are documented
in docs/records.md, which tests/test_doc_facts.py checks against the code (these constants, the statuses the code
writes, the protocols).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnsr.files import write_text_atomic

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1: written before run ids and recipes; still read, compared by the report as legacy
FILENAME = "metrics.json"


def write_record(run_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``metrics.json`` atomically (temp file + rename), so a crash never leaves half a record."""
    path = Path(run_dir) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"schema": SCHEMA_VERSION, **record}, indent=2, sort_keys=False))
    return path


def read_record(path: str | Path) -> dict[str, Any]:
    """Read one record; ``path`` is the file or its run directory."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or record.get("schema") not in READABLE_SCHEMAS:
        found = record.get("schema") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"{path}: unsupported metrics schema {found!r} (this cfnsr reads {READABLE_SCHEMAS})")
    return record
