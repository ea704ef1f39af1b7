"""The Optuna study of a hyperparameter search: where it is stored, its trials and their run folders, the table.

A search (``hparams_search=optuna``) keeps its study in ``<sweep dir>/optuna.db`` (SQLite) and writes one run
folder per trial, named after the trial number; each trial's ``metrics.json`` carries a ``search`` block with the
study name and trial number. Everything here reads those two sources; nothing reads settings from folder names.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnsr.runs.record import FILENAME as RECORD_FILE

DB_NAME = "optuna.db"
TABLE_MD = "trials.md"
TABLE_CSV = "trials.csv"
INTERRUPTED_ATTR = "cfnsr_interrupted"  # user attr of trials failed because their search process died


class SearchError(RuntimeError):
    """A search folder or study that cannot be used as asked; the message names the file and the reason."""


def storage_url(sweep_dir: str | Path) -> str:
    """The SQLite URL of the study database in ``sweep_dir`` (absolute, so the URL works from any directory)."""
    return f"sqlite:///{(Path(sweep_dir) / DB_NAME).resolve()}"


def sqlite_path(storage: Any) -> Path | None:
    """The database file of a ``sqlite:///`` storage URL, None for other storages."""
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        return Path(storage[len("sqlite:///"):])
    return None


def load_study(sweep_dir: str | Path, study_name: str | None = None, storage: str | None = None) -> Any:
    """The study stored in ``storage`` (default: ``<sweep_dir>/optuna.db``); ``study_name`` may be left out when the
    storage holds one study."""
    import optuna

    url = storage or storage_url(sweep_dir)
    db = sqlite_path(url)
    if db is not None and not db.is_file():
        raise SearchError(f"{db}: no study database (is {sweep_dir} the sweep folder of an hparams_search run?)")
    if study_name is None:
        names = [s.study_name for s in optuna.study.get_all_study_summaries(storage=url)]
        if len(names) != 1:
            raise SearchError(f"{url}: holds {len(names)} studies {names}; name one with --study")
        study_name = names[0]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study_name, storage=url)


def trial_records(sweep_dir: str | Path, study_name: str) -> dict[int, tuple[Path, dict[str, Any]]]:
    """Trial number -> (run folder, record) for every ``metrics.json`` under ``sweep_dir`` from this study."""
    found: dict[int, tuple[Path, dict[str, Any]]] = {}
    for path in sorted(Path(sweep_dir).rglob(RECORD_FILE)):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        search = record.get("search") if isinstance(record, dict) else None
        if isinstance(search, dict) and search.get("study") == study_name and search.get("trial") is not None:
            found[int(search["trial"])] = (path.parent, record)
    return found


@dataclass
class TrialRow:
    """One line of the trial table."""

    number: int
    state: str
    value: float | None  # what the study recorded (the job's returned objective)
    params: dict[str, Any]
    folder: Path | None
    recorded: float | None = None  # the objective in the trial's metrics.json
    val_actors: list[int] = field(default_factory=list)


def trial_rows(study: Any, sweep_dir: str | Path) -> list[TrialRow]:
    """Every trial of the study with its state, value, params and run folder (None when none was found)."""
    records = trial_records(sweep_dir, study.study_name)
    rows = []
    for t in study.trials:
        folder, record = records.get(t.number, (None, {}))
        state = t.state.name + (" (interrupted)" if t.user_attrs.get(INTERRUPTED_ATTR) else "")
        rows.append(TrialRow(number=t.number, state=state, value=t.value, params=dict(t.params),
                             folder=folder, recorded=(record.get("objective") or {}).get("value"),
                             val_actors=list(record.get("val_actors") or [])))
    return rows


def best_trial(study: Any) -> Any:
    """The completed trial with the highest value (the study maximises); SearchError when none completed."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    if not done:
        raise SearchError(f"study {study.study_name!r} has no completed trial yet ({len(study.trials)} trials)")
    return max(done, key=lambda t: (t.value, -t.number))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return "" if v is None else str(v)


def format_table(rows: Sequence[TrialRow], best: int | None = None, sweep_dir: str | Path | None = None) -> str:
    """A Markdown table: trial, state, objective, one column per searched parameter, run folder."""
    keys = sorted({k for r in rows for k in r.params})
    header = ["trial", "state", "objective", *keys, "folder"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        folder = r.folder.name if r.folder is not None else "–"
        mark = " (best)" if r.number == best else ""
        lines.append("| " + " | ".join([f"{r.number}{mark}", r.state, _fmt(r.value),
                                        *(_fmt(r.params.get(k)) for k in keys), folder]) + " |")
    return "\n".join(lines)


def write_table(sweep_dir: str | Path, study: Any) -> tuple[str, list[Path]]:
    """Write ``trials.md`` and ``trials.csv`` into the sweep folder; return (the Markdown text, the files)."""
    rows = trial_rows(study, sweep_dir)
    try:
        best = best_trial(study).number
    except SearchError:
        best = None
    text = (f"# Study {study.study_name}: {len(rows)} trials, objective maximised"
            + (f", best trial {best}" if best is not None else "") + "\n\n" + format_table(rows, best) + "\n")
    sweep_dir = Path(sweep_dir)
    md, csv_path = sweep_dir / TABLE_MD, sweep_dir / TABLE_CSV
    md.write_text(text)
    keys = sorted({k for r in rows for k in r.params})
    with csv_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trial", "state", "objective", *keys, "folder"])
        for r in rows:
            w.writerow([r.number, r.state, r.value, *(r.params.get(k) for k in keys),
                        "" if r.folder is None else r.folder.name])
    return text, [md, csv_path]
