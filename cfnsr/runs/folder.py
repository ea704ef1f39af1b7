"""One run, one folder: run ids, the job-folder lock, and the rules for resuming.

Rules (docs/trust.md explains them for users):

* A fresh run gets a new id and writes into its job folder; a folder that already holds another run's record is
  refused (two launches into one sweep folder would otherwise mix their checkpoints and records).
* The job folder is locked by the process writing it (global rank 0) for the whole job; ``filelock`` frees the
  lock when its holder dies, so a killed job never blocks its own resume.
* ``ckpt_path=<run>/checkpoints/last.ckpt`` resumes that run in its own folder, as the same run id, if it did not
  finish and its recipe, fold and seed equal the new command's (differences named in ``resume.allow`` are accepted).
  A finished run is never resumed: its record points at its checkpoints, which a resume would overwrite.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from cfnsr.runs.checkpoint_files import CHECKPOINT_DIR, LAST_NAME, CheckpointError, load_checkpoint, run_id_of
from cfnsr.runs.corpus_check import CORPUS_KEY, corpus_differences
from cfnsr.runs.provenance import effective_batch_difference
from cfnsr.runs.ranks import global_rank_from_env
from cfnsr.runs.recipe import recipe_differences, training_recipe
from cfnsr.runs.record import FILENAME as RECORD_FILE
from cfnsr.runs.renames import stored_key

__all__ = ["global_rank_from_env"]  # moved to cfnsr.runs.ranks; the jobs import it from here

LOCK_FILE = ".job.lock"
OWNER_FILE = ".job.lock.owner"


class RunFolderError(RuntimeError):
    """A run cannot start or resume as asked; the message says why and what to do instead."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


class JobLock:
    """An exclusive lock on a job folder, held by global rank 0 while the job writes it."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._lock = FileLock(str(self.run_dir / LOCK_FILE), timeout=0)

    def __enter__(self) -> JobLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            owner = (self.run_dir / OWNER_FILE)
            who = owner.read_text().strip() if owner.is_file() else "unknown process"
            raise RunFolderError(
                f"job folder {self.run_dir} is being written by another job ({who}); two jobs must not share a "
                f"folder: choose another hydra.run.dir / hydra.sweep.dir, or wait for that job") from None
        (self.run_dir / OWNER_FILE).write_text(f"pid {os.getpid()} on {socket.gethostname()} since "
                                               f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        return self

    def __exit__(self, *exc: Any) -> None:
        (self.run_dir / OWNER_FILE).unlink(missing_ok=True)
        self._lock.release()


def read_own_record(run_dir: Path) -> dict[str, Any] | None:
    """The folder's metrics.json as a dict, None when there is none; unreadable -> RunFolderError."""
    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path}: unreadable run record ({exc}); move the folder aside or delete it") from exc


def claim_for_new_run(run_dir: Path) -> None:
    """Refuse a fresh run in a folder that already holds another run's record or checkpoints."""
    record = read_own_record(run_dir)
    ckpts = sorted(p.name for p in (Path(run_dir) / CHECKPOINT_DIR).glob("*.ckpt"))
    if record is not None or ckpts:
        what = (f"run {record.get('run_id')!r} (status {record.get('status')!r})" if record is not None
                else f"checkpoints {ckpts[:3]}")
        hint = (f"resume it with ckpt_path={Path(run_dir) / 'checkpoints' / LAST_NAME}, or "
                if record is not None and record.get("status") != "finished" else "")
        raise RunFolderError(f"job folder {run_dir} already holds {what}; a new run would overwrite its files: "
                             f"{hint}choose another folder (hydra.run.dir / hydra.sweep.dir)")


def requeued_checkpoint(run_dir: Path) -> Path | None:
    """``last.ckpt`` of this folder when this process is a SLURM requeue of the job that started the run there.

    A requeued job reruns the same command with the same ``SLURM_JOB_ID``; its unfinished run continues in its own
    folder as the same run id. Any other relaunch into an occupied folder is refused by ``claim_for_new_run``.
    """
    job = os.environ.get("SLURM_JOB_ID")
    record = read_own_record(run_dir)
    last = Path(run_dir) / CHECKPOINT_DIR / LAST_NAME
    if job and record and record.get("slurm_job_id") == job and record.get("status") != "finished" \
            and last.is_file():
        return last
    return None


@dataclass(frozen=True)
class Resume:
    """Where and as what an interrupted run continues."""

    run_dir: Path
    run_id: str
    ckpt_path: Path
    epoch: int  # 0-based epoch of the checkpoint


def _container(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True)


def run_identity(cfg: Any) -> dict[str, Any]:
    """What makes two commands the same run: the training recipe plus fold and seed (flat dotted keys)."""
    c = _container(cfg)
    return {**training_recipe(c), "fold": c.get("fold"), "seed": c.get("seed")}


def _allowed(key: str, allow: list[str]) -> bool:
    return any(key == a or key.startswith(a + ".") for a in allow)


def plan_resume(cfg: Any, ckpt_path: str | Path,
                corpus: Callable[[], Mapping[str, Any]] | None = None) -> Resume:
    """Check that ``ckpt_path`` may be resumed by the run ``cfg`` describes; raise with the reason otherwise.

    ``corpus``: gives the corpus fingerprint and cache folder of the command's data now
    (``cfnsr.data.source_identity.run_corpus_identity``); compared with those the checkpoint recorded (``CORPUS_KEY``), so a
    run never continues on another corpus or cache. Called only when the checkpoint records them.
    """
    c = _container(cfg)
    ckpt_path = Path(ckpt_path)
    if str(ckpt_path) == "last":
        raise RunFolderError(_last_hint(c))
    if ckpt_path.name != LAST_NAME:
        raise RunFolderError(f"ckpt_path={ckpt_path}: resume from the run's {LAST_NAME} (a run continues from its "
                             f"latest epoch); to start a new run from these weights use init.weights=")
    try:
        ckpt = load_checkpoint(ckpt_path)
    except CheckpointError as exc:
        raise RunFolderError(f"cannot resume: {exc}") from exc
    run_id = run_id_of(ckpt)
    run_dir = ckpt_path.resolve().parent.parent
    record = read_own_record(run_dir)
    if record is None or record.get("run_id") != run_id:
        found = "no metrics.json" if record is None else f"the record of run {record.get('run_id')!r}"
        raise RunFolderError(
            f"cannot resume {ckpt_path}: it belongs to run {run_id!r} but its run folder {run_dir} holds {found}; "
            f"resume from the checkpoint inside its own run folder, or start a new run from its weights with "
            f"init.weights={ckpt_path}")
    if record.get("status") == "finished":
        raise RunFolderError(
            f"cannot resume {ckpt_path}: run {run_id} finished ({record.get('epochs')} epochs) and its "
            f"metrics.json points at these checkpoints, which a resume would overwrite. To train further, start "
            f"a new run from its weights: init.weights={ckpt_path} (with the optimiser state reset)")
    saved = run_identity(ckpt["cfnsr_config"])
    wanted = run_identity(c)
    # Recipe keys carry their first names (cfnsr.runs.renames): resume.allow=[init.weights] names model.init.weights.
    allow = [stored_key(str(a)) for a in (c.get("resume") or {}).get("allow") or []]
    lines = recipe_differences(saved, wanted)
    # The recipe keeps the batch size but not the device count; the clips per optimiser step must match too.
    batch = effective_batch_difference(ckpt["cfnsr_config"], c)
    lines += [batch] if batch else []
    if corpus is not None and isinstance(ckpt.get(CORPUS_KEY), Mapping):
        lines += corpus_differences(ckpt[CORPUS_KEY], corpus())
    diffs = [line for line in lines if not _allowed(line.split(":", 1)[0], allow)]
    if diffs:
        raise RunFolderError(
            f"cannot resume {ckpt_path}: the command differs from the run it resumes (checkpoint vs now):\n  "
            + "\n  ".join(diffs)
            + "\nrun the same command as the interrupted run, or accept chosen differences with "
              "'resume.allow=[key,...]' (e.g. resume.allow=[trainer.max_epochs])")
    return Resume(run_dir=run_dir, run_id=run_id, ckpt_path=ckpt_path.resolve(), epoch=int(ckpt.get("epoch", -1)))


def _last_hint(c: dict[str, Any]) -> str:
    """Refuse ``ckpt_path=last`` and name the interrupted runs of this experiment that could be resumed."""
    base = Path((c.get("paths") or {}).get("log_dir", "outputs")) / str(c.get("experiment_name", ""))
    unfinished = []
    if base.is_dir():
        for rec_path in base.rglob(RECORD_FILE):
            try:
                rec = json.loads(rec_path.read_text())
            except (OSError, ValueError):
                continue
            last = rec_path.parent / CHECKPOINT_DIR / LAST_NAME
            if rec.get("status") != "finished" and last.is_file():
                unfinished.append((rec_path.stat().st_mtime, last))
    lines = [f"  {p}" for _, p in sorted(unfinished, reverse=True)[:5]]
    return ("ckpt_path=last is ambiguous (Lightning would look in this new run's empty folder and train from "
            "scratch); give the path of the interrupted run's checkpoints/last.ckpt"
            + (":\n" + "\n".join(lines) if lines else f" (no unfinished run with a last.ckpt under {base})"))
