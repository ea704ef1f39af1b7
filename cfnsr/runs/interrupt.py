"""SIGTERM and SIGINT end a training job as *interrupted*: a non-zero exit, a record that says so, a resume command.

Before, Lightning turned SIGTERM into ``SystemExit()`` (exit status 0: schedulers and ``train.py && next`` saw
success) and Ctrl+C into ``SystemExit(1)`` (recorded as "failed: SystemExit: 1"). Now:

* while a job runs, SIGTERM and SIGINT raise :class:`Interrupted` in the main thread (during ``fit``/``test``
  Lightning's own SIGTERM handler runs first, then this one: Lightning calls handlers that were installed before
  it); the job writes ``status: "interrupted"`` with the signal's name and the exact resume command, and the process
  exits with ``128 + signal`` (143 for SIGTERM, 130 for SIGINT);
* a SIGTERM handler installed by the launcher is left in charge: submitit (the SLURM launcher) handles SIGTERM and
  requeues the job, whose run then resumes from ``last.ckpt`` (``cfnsr.runs.folder.requeued_checkpoint``);
* a re-run of an interrupted sweep into its own folder (``hydra.sweep.dir=<the sweep>``, the command the record
  gives) resumes each interrupted job from its ``last.ckpt``, restarts one interrupted before its first checkpoint,
  and leaves finished jobs as they are.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from cfnsr.runs.checkpoint_files import CHECKPOINT_DIR, LAST_NAME
from cfnsr.runs.folder import read_own_record
from cfnsr.runs.record import FILENAME as RECORD_FILE

INTERRUPTED = "interrupted"
SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The same signal again within this many seconds is the same request delivered twice (``timeout`` forwarding a
# SIGTERM that ``kill``/``pkill`` also sent to the job, a scheduler signalling the step and the process group), not
# a user who insists: it is ignored, so the first one's record gets written.
DUPLICATE_WINDOW_S = 2.0


class Interrupted(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt, not an error
    """The job received ``signum``; a BaseException, so ``except Exception`` blocks (Hydra's, a sweep's) pass it."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.signal_name = signal.Signals(signum).name
        self.resume: str | None = None  # the resume command, once the record is written
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


def _owned(signum: int) -> bool:
    """Whether this job may take ``signum`` over: only from Python's defaults, never from a launcher's handler."""
    current = signal.getsignal(signum)
    return current in (signal.SIG_DFL, None) or (signum == signal.SIGINT and current is signal.default_int_handler)


@contextmanager
def interrupt_handlers() -> Iterator[None]:
    """While inside, SIGTERM and SIGINT raise :class:`Interrupted`; a second signal ends the process the default way
    (the first one's record may then be missing), unless it repeats the first within ``DUPLICATE_WINDOW_S`` (one
    request delivered twice: ignored). Outside the main thread, or where a launcher handles a signal, nothing changes
    for that signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[tuple[int, float]] = []  # the first signal and when it came

    def handler(signum: int, _frame: FrameType | None) -> None:
        if fired:
            first, at = fired[0]
            if signum == first and time.monotonic() - at < DUPLICATE_WINDOW_S:
                return  # the same request again: the first one's Interrupted is already on its way
            # a second signal while the record is written: the user insists, stop the hard way
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        fired.append((signum, time.monotonic()))
        raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in SIGNALS if _owned(s)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def _hydra() -> Any | None:
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:
        return None
    return HydraConfig.get() if HydraConfig.initialized() else None


def _script() -> str:
    """``python train.py`` (or the script this process runs)."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "train.py"
    return f"python {name if name.endswith('.py') else 'train.py'}"


def resume_commands(run_dir: Path) -> dict[str, str]:
    """The commands that continue this job: ``job`` (this run alone) and, in a ``-m`` sweep launched from the command
    line, ``sweep`` (the sweep into its own folder: interrupted jobs resume, finished ones are kept)."""
    hc = _hydra()
    overrides = [o for o in (list(hc.overrides.task) if hc is not None else [])
                 if not o.split("=", 1)[0].lstrip("+~") == "ckpt_path"]
    last = Path(run_dir) / CHECKPOINT_DIR / LAST_NAME
    job = [*overrides, f"ckpt_path={last.resolve()}"] if last.is_file() else overrides
    out = {"job": f"{_script()} {shlex.join(job)}".strip()}
    from hydra.types import RunMode

    if hc is not None and hc.mode == RunMode.MULTIRUN and sys.argv and sys.argv[0].endswith(".py"):
        args = [a for a in sys.argv[1:] if a not in ("-m", "--multirun")
                and not a.startswith("hydra.sweep.dir=")]
        sweep_dir = Path(str(hc.sweep.dir)).resolve()
        out["sweep"] = f"{_script()} -m {shlex.join([*args, f'hydra.sweep.dir={sweep_dir}'])}"
    return out


def interrupted_fields(exc: Interrupted, run_dir: Path) -> dict[str, Any]:
    """The record's fields for an interrupted job: status, the signal and the resume command."""
    commands = resume_commands(run_dir)
    exc.resume = commands.get("sweep", commands["job"])  # for the console line at exit
    return {"status": INTERRUPTED, "error": f"interrupted by {exc.signal_name}",
            "interrupted": {"signal": exc.signal_name, "resume": commands.get("sweep", commands["job"]),
                            "resume_job": commands["job"]}}


def interrupted_checkpoint(run_dir: Path) -> Path | None:
    """``last.ckpt`` of an interrupted run in ``run_dir`` (what a re-run of its sweep continues), else None."""
    record = read_own_record(run_dir)
    last = Path(run_dir) / CHECKPOINT_DIR / LAST_NAME
    if record and record.get("status") == INTERRUPTED and last.is_file():
        return last
    return None


def set_aside_interrupted_without_checkpoint(run_dir: Path) -> Path | None:
    """A run interrupted before its first checkpoint has nothing to resume: its record is renamed
    ``metrics.json.interrupted`` (kept, not read by the report) so the job can start afresh in its folder."""
    record = read_own_record(run_dir)
    ckpts = list((Path(run_dir) / CHECKPOINT_DIR).glob("*.ckpt"))
    if record and record.get("status") == INTERRUPTED and not ckpts:
        kept = Path(run_dir) / f"{RECORD_FILE}.{INTERRUPTED}"
        os.replace(Path(run_dir) / RECORD_FILE, kept)
        return kept
    return None


def finished_job(run_dir: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The record in ``run_dir`` when it is a finished run of the same recipe, fold and seed (``identity``:
    ``cfnsr.runs.folder.run_identity`` of the command) (a re-run sweep keeps
    it instead of failing on its occupied folder); None otherwise."""
    from cfnsr.runs.recipe import clean_recipe, recipe_hash

    record = read_own_record(run_dir)
    if not record or record.get("status") != "finished" or not isinstance(record.get("recipe"), dict):
        return None
    recipe = {k: v for k, v in identity.items() if k not in ("fold", "seed")}  # run_identity: recipe + fold, seed
    same = (recipe_hash(clean_recipe(record["recipe"])) == recipe_hash(clean_recipe(recipe))
            and record.get("fold") == identity.get("fold") and record.get("seed") == identity.get("seed"))
    return record if same else None
