"""Reading a weights file as data: tensors and plain containers only, never code (``torch.load(weights_only=True)``).

Every checkpoint cfnsr reads goes through :func:`read_weights_only`: training checkpoints
(``cfnsr.runs.checkpoint_files``) and initialisation weights (``cfnsr.models.build``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch


class WeightsFileError(ValueError):
    """A weights file that cannot be read as data; the message names the file and the reason."""


def read_weights_only(path: str | Path) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain containers only, never code.

    Raises FileNotFoundError for a missing file and :class:`WeightsFileError` for a file that holds Python
    objects (loading it could run code: refused) or is no torch file at all (truncated, another format).
    """


    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsFileError(
            f"{path}: refused: not a weights-only checkpoint (it holds Python objects whose loading could run "
            f"code; cfnsr never unpickles those): {first}") from exc
    except Exception as exc:  # noqa: BLE001 - truncated zip, not a torch file at all, ...
        raise WeightsFileError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
