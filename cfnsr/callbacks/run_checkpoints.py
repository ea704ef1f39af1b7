"""The callback that writes a run's checkpoints: ``last.ckpt`` every epoch and ``best-eNNN.ckpt`` on improvement.

Configured in ``conf/callbacks/default.yaml`` (the training job adds the run's checkpoint folder and id as
instantiation arguments); the files it writes are read back by ``cfnsr.runs.checkpoint_files``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from cfnsr.files import TMP_MARK, tmp_path
from cfnsr.runs.checkpoint_files import LAST_NAME, CheckpointError, best_name


class BesideCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing straight to the path it is given.

    Lightning's own (``_atomic_save`` through fsspec) stages every checkpoint in ``$TMPDIR`` and then moves it: a
    small ``/tmp`` failed the first save with an error that named neither file. ``RunCheckpoints`` already writes a
    temporary name beside the destination and renames it, so the staging adds nothing but a second disk. An error
    names the file (``write`` alone raises ENOSPC without it).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
        except Exception as exc:
            # torch.save reports a failed write as RuntimeError("[enforce fail at inline_container.cc] ...") whose
            # context is the OSError, without the file: raise that OSError naming it
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, OSError):
                cause = cause.__cause__ or cause.__context__
            if cause is None or cause.filename is not None:
                raise
            raise OSError(cause.errno, cause.strerror, str(path)) from exc


_TMP_PID = re.compile(re.escape(TMP_MARK) + r"(\d+)$")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary checkpoints (``.<name>.tmp-<pid>``) in ``folder`` whose writer process is gone (a run
    killed or failed mid-save); returns them."""
    removed = []
    for p in folder.glob(f".*{TMP_MARK}*") if folder.is_dir() else ():
        m = _TMP_PID.search(p.name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # its writer lives (another process on this machine): not ours to delete
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


class RunCheckpoints(pl.Callback):
    """After every validation: ``<dir>/last.ckpt``, and ``<dir>/best-eNNN.ckpt`` when ``monitor`` improved.

    Replaces Lightning's ModelCheckpoint, whose restored state holds file paths (a crafted checkpoint could point
    the test at any file), which writes ``last-v1.ckpt`` beside a ``last.ckpt`` it did not write itself, and which
    refreshes ``save_last`` only on a new best. Here the state is numbers only, names are fixed, each file is
    written under a temporary name and renamed, and only the previous best of this run is deleted.
    """

    def __init__(self, *, monitor: str, mode: str, tie_break: str | None, dirpath: str | Path, run_id: str) -> None:
        """monitor, mode, tie_break: set in conf/callbacks/ (see docs/configs.md).

        dirpath, run_id: the run's checkpoint folder and id, given by the training job when it instantiates the
        configured callbacks (they differ per run: a resumed run keeps its own folder and id).

        tie_break: a metric minimised among epochs whose ``monitor`` equals the best so far (e.g. ``val/loss``: of
        two epochs with the same validation accuracy, the one with the lower validation loss); an equal or missing
        tie-break value keeps the earlier epoch. None: the earliest best epoch (the behaviour before this option).
        """
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if not run_id:
            raise ValueError("RunCheckpoints needs the run id (run_id) its checkpoints carry")
        self.dirpath = Path(dirpath)
        self.run_id = run_id
        self.monitor = monitor
        self.mode = mode
        self.tie_break = tie_break
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.best_tie: float | None = None
        # epochs after the first that reached the current best score and equalled it (reported in the run's record);
        # back to 0 when a strictly better score arrives, so it always counts ties of the score that was selected
        self.ties = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # a user's own plugin is left alone
            trainer.strategy.checkpoint_io = BesideCheckpointIO()
        if trainer.is_global_zero:
            remove_stale_temps(self.dirpath)  # left by a run that died mid-save (resume, or a new run's folder)

    @property
    def state_key(self) -> str:
        return "RunCheckpoints"

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "monitor": self.monitor, "best_score": self.best_score,
                "best_epoch": self.best_epoch, "best_tie": self.best_tie, "ties": self.ties,
                "tie_break": self.tie_break}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("run_id") != self.run_id or state.get("monitor") != self.monitor:
            raise CheckpointError(f"checkpoint callback state of run {state.get('run_id')!r} monitoring "
                                  f"{state.get('monitor')!r} cannot continue run {self.run_id!r} ({self.monitor})")
        self.best_score, self.best_epoch = state.get("best_score"), state.get("best_epoch")
        self.best_tie, self.ties = state.get("best_tie"), int(state.get("ties") or 0)

    def _improved(self, score: float, tie: float | None = None) -> bool:
        """Better than the best so far; on an equal score, a strictly lower ``tie`` value (when ``tie_break``)."""
        if self.best_score is None:
            return True
        if score == self.best_score:
            self.ties += 1
            return tie is not None and self.best_tie is not None and tie < self.best_tie
        better = score > self.best_score if self.mode == "max" else score < self.best_score
        if better:
            self.ties = 0  # an earlier best's ties say nothing about how this one was chosen
        return better

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:  # as Lightning's own: a 1-batch run is no checkpoint
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise RuntimeError(f"RunCheckpoints: metric {self.monitor!r} was not logged this epoch")
        score, epoch = float(value), trainer.current_epoch
        tie_value = trainer.callback_metrics.get(self.tie_break) if self.tie_break else None
        tie = float(tie_value) if tie_value is not None else None
        previous = self.best_epoch
        improved = self._improved(score, tie)
        if improved:
            self.best_score, self.best_epoch, self.best_tie = score, epoch, tie
            self._save(trainer, best_name(epoch))
        self._save(trainer, LAST_NAME)
        # Only now that last.ckpt names the new best: a kill before this line leaves the old best still named.
        if improved and previous is not None and previous != epoch:
            trainer.strategy.remove_checkpoint(self.dirpath / best_name(previous))

    def _save(self, trainer: pl.Trainer, name: str) -> None:
        final = self.dirpath / name
        tmp = tmp_path(final)
        try:
            trainer.save_checkpoint(tmp, weights_only=False)  # full state for resume; collective, rank 0 writes
            if trainer.is_global_zero:
                os.replace(tmp, final)
        except BaseException:
            # a failed save (a full disk) leaves no partial file behind, and frees its space for the run's record
            if trainer.is_global_zero:
                tmp.unlink(missing_ok=True)
            raise
        trainer.strategy.barrier("RunCheckpoints.save")
