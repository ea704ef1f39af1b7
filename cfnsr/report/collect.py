"""Find per-run ``metrics.json`` files on disk and sort them into usable runs and skipped ones.

Only finished runs feed the tables; every other file is kept as a :class:`Skipped` entry with the reason, because a
sweep that silently loses half its folds would report a mean over different test actors than the user thinks.
Duplicates are resolved by :data:`DUPLICATE_RULE` (the record's ``finished_at``, not file mtimes where it exists).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from cfnsr.report.consistency import record_problems
from cfnsr.runs.provenance import format_code_version, init_provenance_key
from cfnsr.runs.recipe import ROW_PREFIXES, clean_recipe, matches_prefix, recipe_hash
from cfnsr.runs.record import FILENAME, read_record
from cfnsr.runs.renames import current_fusion

# Fields a finished record must carry for the report to use it; a record missing one is skipped, not half-used.
REQUIRED_FIELDS = ("dataset", "backbone", "fusion", "protocol", "fold", "seed", "test")
REQUIRED_METRICS = ("war", "uar", "f1")

# ROW_PREFIXES (cfnsr.runs.recipe): recipe keys that tell rows of one table apart; the rest must agree in a table.


def _utc_timestamp(value: Any) -> float | None:
    """Seconds since the epoch of an ISO-8601 time (naive times are taken as UTC); None if unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


@dataclass(frozen=True)
class Run:
    """One finished run: its record plus where it was written and the file's mtime.

    Everything the report knows about a run's settings comes from the record (``recipe`` and the descriptive
    fields), never from the name of the folder it sits in.
    """

    path: Path
    mtime: float
    record: dict[str, Any] = field(repr=False)

    @property
    def fusion(self) -> str:
        """The fusion's current name: a record of a renamed fusion (``multiplication``) joins its row."""
        return current_fusion(str(self.record["fusion"]))

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
        """The (protocol, dataset, backbone) triple; mixing triples in one report needs ``--split``."""
        return (self.protocol, self.dataset, self.backbone)

    @cached_property
    def recipe(self) -> dict[str, Any] | None:
        """The recorded training recipe under the current exclusion rules; None for records written without one."""
        recipe = self.record.get("recipe")
        return clean_recipe(recipe) if isinstance(recipe, dict) else None

    @property
    def has_recipe(self) -> bool:
        return self.recipe is not None

    @cached_property
    def table_recipe(self) -> dict[str, Any] | None:
        """The recipe without the row keys (``fusion.*``, ``model.init.*``): what every run of a table shares."""
        if self.recipe is None:
            return None
        return {k: v for k, v in self.recipe.items() if not matches_prefix(k, ROW_PREFIXES)}

    @cached_property
    def row_recipe(self) -> dict[str, Any]:
        """The recipe's row keys (fusion settings and initialisation); empty without a recorded recipe."""
        if self.recipe is None:
            return {}
        return {k: v for k, v in self.recipe.items() if matches_prefix(k, ROW_PREFIXES)}

    @cached_property
    def init(self) -> dict[str, Any]:
        """The ``model.init.*`` part of the recipe (which initialisations were used)."""
        return {k: v for k, v in self.row_recipe.items() if matches_prefix(k, ("model.init",))}

    @cached_property
    def table_key(self) -> tuple[str, str, str, str | None]:
        """Runs with equal table keys go in one table: the triple plus the hash of the table recipe (None: no
        recipe recorded, such runs are grouped by the triple alone)."""
        tr = self.table_recipe
        return (*self.group_key, None if tr is None else recipe_hash(tr))

    @property
    def corpus_fingerprint(self) -> str | None:
        """The fingerprint of the corpus the run trained and tested on (``cfnsr.data.source_identity``); None in records
        written before it was recorded."""
        value = self.record.get("corpus_fingerprint")
        return value if isinstance(value, str) and value else None

    @property
    def effective_batch(self) -> int | None:
        """Clips per optimiser step (batch size x devices x nodes x accumulation); None when not recorded."""
        value = self.record.get("effective_batch")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def init_provenance(self) -> str | None:
        """Which recipes initialised the run (``video=<recipe hash>,...``), None without a recorded initialisation."""
        return init_provenance_key(self.record.get("init_sources"))

    @property
    def init_run_ids(self) -> list[str]:
        """The run ids of the checkpoints that initialised the run, ``part=run id``."""
        sources = self.record.get("init_sources")
        if not isinstance(sources, dict):
            return []
        return [f"{part}={(src or {}).get('run_id') or 'unknown'}" for part, src in sorted(sources.items())]

    @property
    def code_versions(self) -> tuple[str, ...]:
        """The code version(s) that produced the run (two when a resume ran other code), as display strings."""
        versions = {format_code_version(self.record.get(k)) for k in ("code_version", "code_version_previous")
                    if k == "code_version" or self.record.get(k) is not None}
        return tuple(sorted(versions))

    @cached_property
    def row_key(self) -> tuple[str, str | None, int | None, str | None, str | None]:
        """Within a table, runs with equal row keys form one row: the fusion, the hash of its row recipe, the effective
        batch, the initialisation's provenance (the recipes of the init checkpoints, not just "was it set") and the
        corpus fingerprint (runs on different corpora never share a row). ``report.protocol_gap`` drops index 3."""
        return (self.fusion, recipe_hash(self.row_recipe) if self.recipe is not None else None,
                self.effective_batch, self.init_provenance, self.corpus_fingerprint)

    @property
    def identity(self) -> tuple:
        """Two runs with the same identity measure the same thing; only one of them is kept (see ``DUPLICATE_RULE``)."""
        return (*self.table_key, *self.row_key, self.fold, self.seed)

    @property
    def finished_at(self) -> str | None:
        value = self.record.get("finished_at")
        return value if isinstance(value, str) and value else None

    @property
    def finished_ts(self) -> float | None:
        """``finished_at`` as seconds since the epoch; None when absent or unparsable."""
        return _utc_timestamp(self.finished_at)

    @property
    def run_id(self) -> str:
        value = self.record.get("run_id")
        return "" if value is None else str(value)

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @cached_property
    def overrides(self) -> list[str] | None:
        """The job's command-line overrides from ``.hydra/overrides.yaml`` next to the record, for display only."""
        f = self.run_dir / ".hydra" / "overrides.yaml"
        if not f.is_file():
            return None
        try:
            import yaml

            data = yaml.safe_load(f.read_text())
        except Exception:  # OSError, yaml.YAMLError, ...: an unreadable file is just not shown
            return None
        return [str(x) for x in data] if isinstance(data, list) else None


@dataclass(frozen=True)
class Skipped:
    """A ``metrics.json`` that does not feed the tables, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class SearchTrial(Skipped):
    """A trial of a hyperparameter search (its record has a ``search`` block, or ``protocol: search``).

    Trials validate on a block of their fold's training actors and never test, and their settings were drawn by a
    sampler: they are listed apart from the comparison, never in it. The run a search's chosen settings feed is an
    ordinary run whose record carries ``hparams`` (``python -m cfnsr.search export``).
    """

    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def study(self) -> str:
        return str((self.record.get("search") or {}).get("study") or "(no study recorded)")

    @property
    def trial(self) -> int | None:
        value = (self.record.get("search") or {}).get("trial")
        return None if value is None else int(value)

    @property
    def objective(self) -> float | None:
        return (self.record.get("objective") or {}).get("value")


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
    if record.get("search") or record.get("protocol") == "search":
        return SearchTrial(path, f"hyperparameter-search trial (status {status!r}): not a comparison run", record)
    if status == "failed":
        return Skipped(path, f"failed: {record.get('error') or 'no error message recorded'}")
    if status == "interrupted":  # SIGTERM/SIGINT (cfnsr.runs.interrupt): not a failure, and resumable
        info = record.get("interrupted") or {}
        return Skipped(path, f"interrupted by {info.get('signal', 'a signal')}: resume with "
                             f"{info.get('resume') or 'its checkpoints/last.ckpt'}")
    if status == "running":
        return Skipped(path, "running / unfinished (status 'running')")
    if status == "debug":
        return Skipped(path, f"debug run ({', '.join(record.get('debug') or [])}): a check of the code, not a result")
    if status != "finished":
        return Skipped(path, f"unfinished (status {status!r})")
    missing = _missing_fields(record)
    if missing:
        return Skipped(path, f"incomplete record: missing {', '.join(missing)}")
    try:
        int(record["fold"]), int(record["seed"])
    except (TypeError, ValueError):
        return Skipped(path, f"incomplete record: fold/seed not integers ({record['fold']!r}, {record['seed']!r})")
    problems = record_problems(path, record)  # edited by hand, partial, or disagreeing with its result files
    if problems:
        return Skipped(path, "inconsistent record, not used: " + "; ".join(problems))
    return Run(path=path, mtime=mtime, record=record)


EVALUATION_FILE = "evaluation.json"  # evaluate.py's record (cfnsr.tasks.evaluate)


def evaluation_skip(path: Path) -> Skipped:
    """An ``evaluate.py`` record under the report's inputs: never a table entry (its training run's metrics.json
    is), listed with what it evaluated, and as partial when it saw only part of its test split."""
    try:
        record = json.loads(path.read_text())
        ckpt = record.get("checkpoint") or {}
        what = f"checkpoint {ckpt.get('path')} (run {ckpt.get('run_id')}, epoch {ckpt.get('epoch')})"
    except (OSError, ValueError, AttributeError) as exc:
        return Skipped(path, f"unreadable evaluation record: {exc}")
    if record.get("partial"):
        return Skipped(path, f"partial evaluation ({record['partial']}) of {what}: a check, not a result")
    return Skipped(path, f"evaluate.py result for {what}: not a training run (its run's metrics.json is)")


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
    for p in map(Path, paths):
        if p.is_dir():
            skipped += [evaluation_skip(f.resolve()) for f in sorted(p.rglob(EVALUATION_FILE)) if f.is_file()]
    return runs, skipped


DUPLICATE_RULE = (
    "Runs with the same table, row, fold and seed are duplicates; one is kept. Rule: the record with the latest "
    "`finished_at` (ISO-8601 UTC, written by the training job) wins; equal times are broken by the larger "
    "`run_id`, then by the larger path. A record without `finished_at` (written before it was recorded) falls "
    "back to its file's modification time, which copying or touching the file changes: such decisions are marked "
    "below."
)


def decision_time(run: Run) -> tuple[float, str]:
    """(seconds since the epoch, source): ``finished_at`` when the record has it, else the file mtime."""
    ts = run.finished_ts
    return (ts, "finished_at") if ts is not None else (run.mtime, "file mtime")


def _keep_order(run: Run) -> tuple[float, str, str]:
    return (decision_time(run)[0], run.run_id, str(run.path))


def duplicate_basis(dropped: Run, kept: Run) -> str:
    """How the choice between two duplicates was made: "finished_at", or "file mtime" if either lacks it."""
    sources = {decision_time(dropped)[1], decision_time(kept)[1]}
    return "finished_at" if sources == {"finished_at"} else "file mtime"


def deduplicate(runs: Sequence[Run]) -> tuple[list[Run], list[tuple[Run, Run]]]:
    """Keep one run per identity by :data:`DUPLICATE_RULE`; return (kept runs, [(dropped, kept_instead), ...])."""
    best: dict[tuple, Run] = {}
    for run in runs:
        cur = best.get(run.identity)
        if cur is None or _keep_order(run) > _keep_order(cur):
            best[run.identity] = run
    kept = [r for r in runs if best[r.identity] is r]
    dropped = [(r, best[r.identity]) for r in runs if best[r.identity] is not r]
    return kept, dropped
