"""What a run writes into every checkpoint about itself, handed to the Lightning module when it is built.

Resume (``cfnsr.runs.folder``), the initialisation checks (``cfnsr.builders.init_checks``) and evaluate read these
keys back. Plain Python values only: the object travels to the ddp_spawn children inside the pickled module, and
checkpoints must load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cfnsr.runs.checkpoint_files import CHECKPOINT_FORMAT
from cfnsr.runs.corpus_check import CORPUS_KEY
from cfnsr.runs.provenance import code_version


@dataclass
class RunIdentity:
    """One run's identity.

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
