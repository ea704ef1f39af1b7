"""A real small file system for disk-full tests: a tmpfs of a few hundred KiB mounted in the test's folder.

Mounting needs root (CAP_SYS_ADMIN); without it the tests are skipped, or fail under ``CI=true``
(``tests_helpers.unavailable``). No write is mocked: the kernel answers ENOSPC itself.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests_helpers import unavailable  # noqa: E402


@contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (mount's syntax: ``300k``, ``2m``) on ``where`` (created); unmount after."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a {size} tmpfs on {where} for a real disk-full test (needs root / "
                    f"CAP_SYS_ADMIN): {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def grow(where: Path, size: str) -> None:
    """Resize a mounted tmpfs (freeing the disk without touching its files)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True, capture_output=True)


def fill(where: Path, leave: int = 0) -> None:
    """Fill the file system of ``where`` up to ``leave`` bytes free, with a hidden ballast file."""
    import shutil

    free = shutil.disk_usage(where).free - leave
    if free > 0:
        with open(where / ".ballast", "wb") as f:
            try:
                f.write(b"\0" * free)
            except OSError:
                pass
