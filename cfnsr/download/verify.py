"""Checking a downloaded file against what its source says: size, then the source's checksum.

Checksums are written ``<algorithm>:<hex>``: ``md5`` (Zenodo's file list), ``sha256`` (a git-lfs pointer's oid),
``gitsha1`` (git's blob id from the GitHub tree listing: sha1 of ``b"blob <size>\\0" + content``). A source that
gives no checksum is checked by size, and the file's sha256 is recorded on first download.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ALGORITHMS = ("md5", "sha256", "gitsha1")
_BLOCK = 1 << 20


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of ``path`` under ``algorithm`` (one of ``ALGORITHMS``)."""
    if algorithm == "gitsha1":
        h = hashlib.sha1(usedforsecurity=False)
        h.update(f"blob {path.stat().st_size}\0".encode())
    elif algorithm in ("md5", "sha256"):
        h = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.sha256()
    else:
        raise ValueError(f"unknown checksum algorithm {algorithm!r} (expected one of {ALGORITHMS})")
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def split_checksum(checksum: str) -> tuple[str, str]:
    """``"md5:abc"`` -> ``("md5", "abc")``; an unknown algorithm or a malformed value raises naming it."""
    algorithm, _, value = checksum.partition(":")
    if algorithm not in ALGORITHMS or not value or any(c not in "0123456789abcdef" for c in value.lower()):
        raise ValueError(f"checksum {checksum!r}: expected <{'|'.join(ALGORITHMS)}>:<hex digest>")
    return algorithm, value.lower()


def problem(path: Path, size: int | None, checksum: str | None) -> str | None:
    """Why ``path`` is not the expected file (None: it is). Size first: it is free and catches truncation."""
    if not path.is_file():
        return f"{path} is missing"
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"{path.name}: size {actual} bytes, expected {size}"
    if checksum:
        algorithm, expected = split_checksum(checksum)
        got = file_digest(path, algorithm)
        if got != expected:
            return f"{path.name}: {algorithm} {got}, expected {expected}"
    return None
