"""Writing files so that a reader never sees half of one: write a hidden temporary sibling, then rename it.

``os.replace`` within one folder is atomic on POSIX, so a crash (or a kill) leaves either the old file or the new
one, plus at most a ``.<name>.tmp-<pid>`` file that the next writer ignores (and the cache and the synthetic corpus
remove when their writer is gone).
"""

from __future__ import annotations

import os
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

