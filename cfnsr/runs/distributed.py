"""Passing facts and weights from global rank 0 to every other rank of a multi-process run.

Who needs it: only a run with more than one process (ddp under torchrun or SLURM, or the children of ddp_spawn); in a
lone process every function here is a plain call. Why: after ``fit`` the training job tests the selected and the last
checkpoint, but only rank 0 wrote those files and nodes without a shared filesystem have no copy of them. So rank 0
alone reads each file (checked to be this run's own) and hands every rank the facts it needs (:func:`from_rank0`) and
the weights to test (:func:`load_from_rank0`): no rank reads a file that another rank writes. When rank 0 fails, the
other ranks raise an error naming that failure instead of waiting at a broadcast that never comes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def distributed() -> bool:
    """Whether this process is in an initialised process group (False in a lone process and in the main process
    of ddp_spawn, whose children hold the group)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def from_rank0(make: Callable[[], Any]) -> Any:
    """``make()`` evaluated on rank 0 only; its value (pickled, so keep it small) on every rank.

    Outside a process group this is just ``make()``. When rank 0 fails, it raises its own error and the other ranks
    raise one that names it.
    """
    if not distributed():
        return make()
    payload: list[Any] = [None]
    error: BaseException | None = None
    if torch.distributed.get_rank() == 0:
        try:
            payload = [("ok", make())]
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other ranks heard of it
            error, payload = exc, [("error", f"{type(exc).__name__}: {exc}")]
    torch.distributed.broadcast_object_list(payload, src=0)
    kind, value = payload[0]
    if error is not None:
        raise error
    if kind == "error":
        raise RuntimeError(f"rank 0 failed: {value}")
    return value


def load_from_rank0(module: nn.Module, state_dict: Callable[[], dict[str, Any]]) -> None:
    """Load the weights ``state_dict()`` gives on rank 0 into ``module`` on every rank.

    Every rank built the same network, so the tensors of ``module.state_dict()`` match in order and shape; each is
    broadcast in place from rank 0 (on the current GPU under NCCL, which takes no CPU tensors).
    """
    def load() -> None:
        module.load_state_dict(state_dict())  # strict: a mismatch fails every rank, not only rank 0

    from_rank0(load)
    if not distributed():
        return
    device = (torch.device("cuda", torch.cuda.current_device())
              if torch.distributed.get_backend() == "nccl" else torch.device("cpu"))
    with torch.no_grad():
        for tensor in module.state_dict().values():
            buf = tensor.to(device)
            torch.distributed.broadcast(buf, src=0)
            tensor.copy_(buf)
