"""Writing files so that a reader never sees half of one: write a hidden temporary sibling, then rename it.

``os.replace`` within one folder is atomic on POSIX, so a crash (or a kill) leaves either the old file or the new
one, plus at most a ``.<name>.tmp-<pid>`` file that the next writer ignores (and the cache and the synthetic corpus
remove when their writer is gone).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"  # ".<name>.tmp-<pid>": hidden, in the same folder, and not matched by *.mp4/*.json globs


def tmp_path(final: str | Path) -> Path:
    """The temporary sibling of ``final`` that this process writes before renaming it to ``final``."""
    final = Path(final)
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}")


@contextmanager
def atomic_write(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``final``, on error it is removed.

    For writers that need a path (PyAV, matplotlib with an explicit ``format``, torch.save): ``with
    atomic_write(p) as tmp: writer(tmp)``.
    """
    final = Path(final)
    tmp = tmp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; a leftover only when the writer failed


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return path



# errno values that describe the machine (disk full, quota, I/O error, permission, read-only file system), not the
# data being processed: a run stops on them instead of recording a defect of one clip or file.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EACCES, errno.EPERM, errno.EROFS})


def environment_error(exc: BaseException | None) -> OSError | None:
    """The OSError in ``exc``'s chain (itself, its causes and contexts) whose errno is one of
    ``ENVIRONMENT_ERRNOS``, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def describe_os_error(exc: OSError, fallback: str | Path | None = None) -> str:
    """One line: the error, the full path it concerns (its filename, else ``fallback``) and the file system that
    holds it with its free space, e.g. ``ENOSPC: No space left on device: /runs/x/checkpoints/.last.ckpt.tmp-7
    (file system of /runs: 2.0 MiB, 0.0 MiB free now)``; "now": after the
    failed write's partial file may have been removed."""
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    raw = exc.filename if exc.filename is not None else fallback
    if raw is None:
        return f"{name}: {exc.strerror or exc}"
    path = Path(os.path.abspath(os.fsdecode(raw)))
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    disk = ""
    try:
        usage = shutil.disk_usage(where)
        mount = where.resolve()
        while not os.path.ismount(mount) and mount != mount.parent:
            mount = mount.parent
        disk = f" (file system of {mount}: {usage.total / 2 ** 20:.1f} MiB, {usage.free / 2 ** 20:.1f} MiB free now)"
    except OSError:
        pass
    return f"{name}: {exc.strerror or exc}: {path}{disk}"
