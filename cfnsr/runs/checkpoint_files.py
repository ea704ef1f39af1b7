"""cfnsr checkpoint files: what they carry, how they are read (as data only), which files a run tests.

A cfnsr training checkpoint is a Lightning checkpoint plus these plain entries:

* ``cfnsr_format``: ``CHECKPOINT_FORMAT``; a checkpoint of another format is refused with a clear message;
* ``cfnsr_run_id``: the id of the run that wrote it (also in that run's ``metrics.json``);
* ``cfnsr_config``: the run's resolved config (plain dicts and lists), from which ``evaluate.py`` rebuilds the run;
* ``cfnsr_split``: the run's ``train_actors``, ``val_actors`` and ``test_actors``, checked before its weights
  initialise another run (``cfnsr.builders.init_checks``; absent in checkpoints written before it);
* ``cfnsr_code_version``: the code that wrote it (``cfnsr.runs.provenance.code_version``);
* ``cfnsr_corpus``: the corpus and cache the run trained on (``cfnsr.runs.corpus_check``);

all of them written from the run's ``RunIdentity`` (below), which the Lightning module is built with;
* the ``RunCheckpoints`` callback state (``cfnsr.callbacks.run_checkpoints``): best validation score and its epoch (numbers, never paths).

Every checkpoint is read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling (and so could
run code) is refused, never executed. Which files a run tests is decided from its own checkpoint folder and the run
id inside each file, never from state restored out of a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnsr.runs.corpus_check import CORPUS_KEY
from cfnsr.runs.provenance import code_version
from cfnsr.runs.renames import current_config
from cfnsr.weights_only import WeightsFileError, read_weights_only

CHECKPOINT_FORMAT = 1
LAST_NAME = "last.ckpt"
CHECKPOINT_DIR = "checkpoints"  # a run's checkpoints: <run_dir>/checkpoints/


@dataclass
class RunIdentity:
    """What a run writes into every checkpoint about itself, handed to the Lightning module when it is built.

    Resume (``cfnsr.runs.folder``), the initialisation checks (``cfnsr.builders.init_checks``) and evaluate read
    these keys back. Plain Python values only: the object travels to the ddp_spawn children inside the pickled
    module, and checkpoints must load with ``torch.load(weights_only=True)``.

    Attributes:
        run_id: the run id (``cfnsr.runs.folder``), kept across resumes.
        config: the resolved run config (a plain dict); evaluate rebuilds the run from it.
        split: ``{"train_actors", "val_actors", "test_actors"}``: who may be initialised from these weights.
        corpus: the corpus fingerprint and cache the run trains on (``cfnsr.runs.corpus_check``); None until the
            training job has prepared its data, and absent from checkpoints while None.
    """

    run_id: str
    config: dict[str, Any]
    split: dict[str, list[Any]] | None
    corpus: dict[str, Any] | None = None

    def checkpoint_fields(self) -> dict[str, Any]:
        """The checkpoint keys: ``cfnsr_config``, ``cfnsr_format``, ``cfnsr_run_id``, ``cfnsr_split``,
        ``cfnsr_code_version`` (the code that saved it, now) and, once known, ``cfnsr_corpus``."""
        fields: dict[str, Any] = {
            "cfnsr_config": self.config,
            "cfnsr_format": CHECKPOINT_FORMAT,
            "cfnsr_run_id": self.run_id,
            "cfnsr_split": self.split,
            "cfnsr_code_version": code_version(),
        }
        if self.corpus is not None:
            fields[CORPUS_KEY] = dict(self.corpus)
        return fields


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message names the file and the reason."""


def best_name(epoch: int) -> str:
    """File name of the selected checkpoint of 0-based ``epoch``."""
    return f"best-e{epoch:03d}.ckpt"


def load_checkpoint(path: str | Path, require_run: bool = True) -> dict[str, Any]:
    """Read a checkpoint as data (``weights_only=True``) and check that it is a cfnsr checkpoint of this format.

    require_run: also require ``cfnsr_run_id`` and ``cfnsr_format`` (a resumable checkpoint of this version); with
        False, checkpoints written before format versions (which carry only ``cfnsr_config``) are accepted.
    Raises ``CheckpointError`` naming the file: missing, not a weights-only file (loading it would run code),
    not a cfnsr checkpoint, or another format.
    """
    path = Path(path)
    try:
        ckpt = read_weights_only(path)
    except (FileNotFoundError, WeightsFileError) as exc:
        raise CheckpointError(str(exc)) from exc
    if not isinstance(ckpt, dict) or "cfnsr_config" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a cfnsr training checkpoint (no saved run config and weights)")
    fmt = ckpt.get("cfnsr_format")
    if fmt is None and require_run:
        raise CheckpointError(f"{path}: written by cfnsr before checkpoints carried a run id and format version; "
                              f"it can be evaluated or used as init.weights, not resumed")
    if fmt is not None and fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {fmt!r}, this cfnsr reads format {CHECKPOINT_FORMAT}")
    # Read under the current names (a checkpoint saved with fusion.name=multiplication rebuilds prob_product).
    ckpt["cfnsr_config"] = current_config(ckpt["cfnsr_config"])
    return ckpt


def run_id_of(ckpt: dict[str, Any]) -> str | None:
    return ckpt.get("cfnsr_run_id")


def run_checkpoints(ckpt_dir: str | Path, run_id: str) -> tuple[Path, dict[str, Any], Path, dict[str, Any]]:
    """The selected and the last checkpoint that run ``run_id`` wrote in ``ckpt_dir``, each checked.

    The selected file is the one ``last.ckpt`` names (its ``RunCheckpoints`` state), never whichever best-eNNN
    file happens to lie there: a run killed between writing a new best and its ``last.ckpt`` leaves a best file
    that the resumed run may not confirm. Returns (best path, best checkpoint, last path, last checkpoint).
    Raises ``CheckpointError`` when ``last.ckpt`` or the named best file is missing, belongs to another run, or
    holds another epoch than the state says.
    """
    ckpt_dir = Path(ckpt_dir)
    last_path = ckpt_dir / LAST_NAME
    last = load_checkpoint(last_path)
    if run_id_of(last) != run_id:
        raise CheckpointError(f"{last_path}: written by run {run_id_of(last)!r}, not by this run {run_id!r}")
    best_epoch = callback_state(last).get("best_epoch")
    if best_epoch is None:
        raise CheckpointError(f"{last_path}: names no selected epoch (no RunCheckpoints state)")
    best_path = ckpt_dir / best_name(int(best_epoch))
    best = load_checkpoint(best_path)
    if run_id_of(best) != run_id or best["epoch"] != best_epoch:
        raise CheckpointError(f"{best_path}: not the selected checkpoint of run {run_id} (it holds run "
                              f"{run_id_of(best)!r}, epoch {best['epoch'] + 1}; {LAST_NAME} selects epoch "
                              f"{best_epoch + 1})")
    if best["epoch"] > last["epoch"]:
        raise CheckpointError(f"{last_path}: epoch {last['epoch'] + 1} is older than the selected checkpoint "
                              f"{best_path.name} (epoch {best['epoch'] + 1}): a stale last.ckpt")
    return best_path, best, last_path, last


def callback_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The ``RunCheckpoints`` state saved in a checkpoint ({} when absent)."""
    return dict((ckpt.get("callbacks") or {}).get("RunCheckpoints") or {})
