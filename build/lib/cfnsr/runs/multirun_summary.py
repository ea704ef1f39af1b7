"""The end of a multirun: one line per job (status, selected epoch, validation and test WAR) and the report command.

``MultirunSummary`` is a Hydra callback (``hydra.callbacks`` in ``conf/hydra/default.yaml``): when every job of a
``-m`` sweep has returned, it reads each job folder's ``metrics.json``, prints the table and writes it to
``<sweep_dir>/summary.txt``. Only the records on disk are read, so the table is the same for jobs run by a cluster
launcher elsewhere.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from cfnsr.runs.record import FILENAME as RECORD

FILENAME = "summary.txt"
_ERROR_WIDTH = 60
_NAME_WIDTH = 48  # job folder names carry every override; the leading job number keeps a cut name unique


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Job folders in job-number order: subfolders holding a record or Hydra's ``.hydra`` folder."""
    dirs = [p for p in sweep_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and ((p / RECORD).exists() or (p / ".hydra").is_dir())]

    def key(p: Path) -> tuple[int, str]:
        m = re.match(r"(\d+)", p.name)
        return (int(m.group(1)) if m else 1 << 30, p.name)

    return sorted(dirs, key=key)


def _pct(result: Any, key: str = "war") -> str:
    value = result.get(key) if isinstance(result, dict) else None
    return "–" if value is None else f"{100 * value:.2f}"


def _read(job: Path) -> dict[str, Any] | None:
    try:
        return json.loads((job / RECORD).read_text())
    except (OSError, ValueError):
        return None


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def job_line(job: Path, width: int) -> tuple[str, bool]:
    """One job's row and whether it finished."""
    record = _read(job)
    name = _cut(job.name, width)
    if record is None:
        why = "unreadable metrics.json" if (job / RECORD).exists() else "no metrics.json (stopped before training)"
        return f"{name:{width}s}  {'missing':8s}  {'–':>7s}  {'–':>7s}  {'–':>8s}  {why}", False
    status = str(record.get("status"))
    best, epochs = record.get("best_epoch"), record.get("epochs")
    # best_epoch is Lightning's 0-based count (as in the best-eNNN.ckpt names); people read epochs from 1.
    epoch = f"{best + 1}/{epochs}" if best is not None and epochs else "–"
    objective = record.get("objective") or {}
    val = "–" if objective.get("value") is None else f"{100 * objective['value']:.2f}"
    line = f"{name:{width}s}  {status:8s}  {epoch:>7s}  {val:>7s}  {_pct(record.get('test')):>8s}"
    if record.get("error"):
        error = " ".join(str(record["error"]).split())
        line += "  " + _cut(error, _ERROR_WIDTH)
    elif status == "debug":
        line += "  " + ", ".join(record.get("debug") or [])
    return line, status == "finished"


def format_summary(sweep_dir: str | Path) -> str:
    """The multirun's one-screen summary: a line per job, the counts, and the command for the full report."""
    sweep_dir = Path(sweep_dir)
    jobs = _job_dirs(sweep_dir) if sweep_dir.is_dir() else []
    if not jobs:
        return f"multirun {sweep_dir}: no job folders"
    width = min(_NAME_WIDTH, max(len("job"), *(len(j.name) for j in jobs)))
    rows = [job_line(j, width) for j in jobs]
    finished = sum(ok for _, ok in rows)
    lines = [
        f"multirun {sweep_dir}: {len(jobs)} job(s), {finished} finished",
        f"{'job':{width}s}  {'status':8s}  {'epoch':>7s}  {'val WAR':>7s}  {'test WAR':>8s}",
        *(line for line, _ in rows),
        "epoch: selected / trained; val WAR: the selected epoch's validation score (none under protocol=paper,",
        "which selects on test); test WAR: the selected weights on the test fold; WAR in %.",
        f"report: python -m cfnsr.report {shlex.quote(str(sweep_dir))}",
    ]
    return "\n".join(lines)


class MultirunSummary(Callback):
    """Print and save the summary of a finished multirun (``<sweep_dir>/summary.txt``)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        text = format_summary(sweep_dir)
        print("\n" + text)
        if sweep_dir.is_dir():
            (sweep_dir / FILENAME).write_text(text + "\n", encoding="utf-8")
