"""Free disk space, checked before a download starts so that a full disk is a message, not a half-written corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

from cfnsr.download.http import DiskFullError

GIB = 1 << 30


def existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing parent: where the files will land, for ``disk_usage``."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Bytes available to this user on the file system holding ``path`` (which need not exist yet)."""
    return shutil.disk_usage(existing_ancestor(path)).free


def require_free(path: Path, need: int, detail: str, reserve: int) -> None:
    """Raise ``DiskFullError`` unless ``need + reserve`` bytes are free where ``path`` lives.

    ``detail`` says what the bytes are for (shown in the message); ``reserve`` is head room left free.
    """
    free = free_bytes(path)
    if need + reserve > free:
        raise DiskFullError(
            f"not enough free space for the download into {path}: needs {gib(need)} ({detail}) plus "
            f"{gib(reserve)} head room, but {existing_ancestor(path)} has {gib(free)} free. Free some space or "
            f"choose another data.root")


def gib(n: int) -> str:
    """``n`` bytes for a message: GiB from 1 GiB on, else MiB."""
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / (1 << 20):.2f} MiB"
