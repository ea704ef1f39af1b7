"""Find per-run ``metrics.json`` files on disk and sort them into usable runs and skipped ones.

Only finished runs feed the tables; every other file is kept as a :class:`Skipped` entry with the reason, because a
sweep that silently loses half its folds would report a mean over different test actors than the user thinks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnsr.run_record import FILENAME, read_record

# Fields a finished record must carry for the report to use it; a record missing one is skipped, not half-used.
REQUIRED_FIELDS = ("dataset", "backbone", "fusion", "protocol", "fold", "seed", "test")
REQUIRED_METRICS = ("war", "uar", "f1")


@dataclass(frozen=True)
class Run:
    """One finished run: its record plus where and when it was written (mtime decides between duplicates)."""

    path: Path
    mtime: float
    record: dict[str, Any] = field(repr=False)

    @property
    def fusion(self) -> str:
        return str(self.record["fusion"])

    @property
    def fold(self) -> int:
        return int(self.record["fold"])

    @property
    def seed(self) -> int:
        return int(self.record["seed"])

    @property
    def protocol(self) -> str:
        return str(self.record["protocol"])

    @property
    def dataset(self) -> str:
        return str(self.record["dataset"])

    @property
    def backbone(self) -> str:
        return str(self.record["backbone"])

    @property
    def group_key(self) -> tuple[str, str, str]:
        """The (protocol, dataset, backbone) triple that must agree within one table."""
        return (self.protocol, self.dataset, self.backbone)

    @property
    def identity(self) -> tuple[str, str, str, str, int, int]:
        """Two runs with the same identity measure the same thing; only the newest is kept."""
        return (*self.group_key, self.fusion, self.fold, self.seed)

    @property
    def run_dir(self) -> Path:
        return self.path.parent


@dataclass(frozen=True)
class Skipped:
    """A ``metrics.json`` that does not feed the tables, and why."""

    path: Path
    reason: str


def find_metric_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``metrics.json`` under the given directories (or the files themselves), each once, in sorted order."""
    found: set[Path] = set()
    for p in paths:
        p = Path(p)
        if p.is_file():
            found.add(p.resolve())
        elif p.is_dir():
            found.update(f.resolve() for f in p.rglob(FILENAME) if f.is_file())
        else:
            raise FileNotFoundError(f"report input does not exist: {p}")
    return sorted(found)


def _missing_fields(record: dict[str, Any]) -> list[str]:
    missing = [k for k in REQUIRED_FIELDS if record.get(k) is None]
    test = record.get("test")
    if isinstance(test, dict):
        missing += [f"test.{k}" for k in REQUIRED_METRICS if test.get(k) is None]
    elif "test" not in missing:
        missing.append("test")
    return missing


def classify(path: Path) -> Run | Skipped:
    """Read one file and decide whether it is a usable run; never raises for a bad file."""
    try:
        record = read_record(path)
        mtime = path.stat().st_mtime
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        return Skipped(path, f"unreadable: {exc}")
    if not isinstance(record, dict):
        return Skipped(path, "unreadable: top level is not a JSON object")
    status = record.get("status")
    if status == "failed":
        return Skipped(path, f"failed: {record.get('error') or 'no error message recorded'}")
    if status == "running":
        return Skipped(path, "running / unfinished (status 'running')")
    if status != "finished":
        return Skipped(path, f"unfinished (status {status!r})")
    missing = _missing_fields(record)
    if missing:
        return Skipped(path, f"incomplete record: missing {', '.join(missing)}")
    try:
        int(record["fold"]), int(record["seed"])
    except (TypeError, ValueError):
        return Skipped(path, f"incomplete record: fold/seed not integers ({record['fold']!r}, {record['seed']!r})")
    return Run(path=path, mtime=mtime, record=record)


def collect_runs(paths: Sequence[str | Path] | str | Path) -> tuple[list[Run], list[Skipped]]:
    """Find every ``metrics.json`` under ``paths``; return (finished runs, skipped files with reasons).

    Duplicates are not resolved here: :func:`cfnsr.report.build.build_report` does that, so runs handed to it by
    other code get the same treatment.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    runs: list[Run] = []
    skipped: list[Skipped] = []
    for f in find_metric_files(paths):
        item = classify(f)
        (runs if isinstance(item, Run) else skipped).append(item)  # type: ignore[arg-type]
    return runs, skipped


def deduplicate(runs: Sequence[Run]) -> tuple[list[Run], list[tuple[Run, Run]]]:
    """Keep the newest run (by file mtime) per identity; return (kept runs, [(dropped, kept_instead), ...])."""
    newest: dict[tuple, Run] = {}
    for run in runs:
        cur = newest.get(run.identity)
        # Path breaks mtime ties so the choice never depends on the order the files were found in.
        if cur is None or (run.mtime, str(run.path)) > (cur.mtime, str(cur.path)):
            newest[run.identity] = run
    kept = [r for r in runs if newest[r.identity] is r]
    dropped = [(r, newest[r.identity]) for r in runs if newest[r.identity] is not r]
    return kept, dropped
