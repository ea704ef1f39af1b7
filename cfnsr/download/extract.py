"""Extracting the members a corpus uses from a downloaded zip, safely and atomically.

* Every entry name is checked before anything is written: an absolute path, a drive letter or a ``..`` component
  stops the extraction naming the entry (a zip is data from the network, never a list of places to write).
* Only members whose base name matches a rule's ``match`` (``fnmatch``) are written, to ``rule.to`` formatted with
  ``{name}`` (the base name) and ``{parent}`` (the folder holding it in the zip), relative to the corpus root.
* Each member is written to a hidden temporary sibling (``cfnsr.files.atomic_write``) and renamed when complete and
  its CRC checked (``zipfile`` checks it on the full read): a killed extraction leaves no half clip under a clip's
  name. A member already present with the member's size is skipped (a resumed extraction).
"""

from __future__ import annotations

import fnmatch
import glob
import re
import shutil
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cfnsr.download.http import DownloadError, raise_disk_full
from cfnsr.files import TMP_MARK, atomic_write

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ExtractRule:
    """Members whose base name matches ``match`` go to ``to`` (``{name}``, ``{parent}``) under the corpus root."""

    match: str
    to: str


def rules_from(config: Iterable[Mapping[str, str]]) -> list[ExtractRule]:
    """Rules from config entries ``{match: ..., to: ...}``; a missing key names the entry."""
    rules = []
    for i, entry in enumerate(config):
        if set(entry) != {"match", "to"}:
            raise ValueError(f"extract[{i}] = {dict(entry)}: expected exactly the keys match and to")
        rules.append(ExtractRule(str(entry["match"]), str(entry["to"])))
    return rules


def unsafe_reason(name: str) -> str | None:
    """Why a zip entry name could write outside the target folder (None: it cannot)."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "parent-folder component '..'"
    return None


def planned_members(zf: zipfile.ZipFile, rules: list[ExtractRule], archive: str) -> list[tuple[zipfile.ZipInfo, str]]:
    """(member, destination relative to the root) for every member a rule selects; checks every entry name."""
    for info in zf.infolist():
        reason = unsafe_reason(info.filename)
        if reason:
            raise DownloadError(f"{archive}: refusing zip entry {info.filename!r} ({reason}); nothing was extracted "
                                f"from this archive")
    plan: list[tuple[zipfile.ZipInfo, str]] = []
    seen: dict[str, str] = {}
    for info in zf.infolist():
        if info.is_dir():
            continue
        path = PurePosixPath(info.filename.replace("\\", "/"))
        for rule in rules:
            if fnmatch.fnmatchcase(path.name, rule.match):
                parent = path.parent.name
                if "{parent}" in rule.to and not parent:
                    raise DownloadError(f"{archive}: entry {info.filename!r} has no folder for {rule.to!r}")
                dest = rule.to.format(name=path.name, parent=parent)
                if dest in seen:
                    raise DownloadError(f"{archive}: entries {seen[dest]!r} and {info.filename!r} both extract to "
                                        f"{dest}")
                seen[dest] = info.filename
                plan.append((info, dest))
                break
    return plan


def extracted_size(archive: Path, rules: list[ExtractRule]) -> int:
    """Bytes the selected members take once extracted (from the zip's directory; nothing is read)."""
    with zipfile.ZipFile(archive) as zf:
        return sum(info.file_size for info, _ in planned_members(zf, rules, archive.name))


def extract_members(archive: Path, root: Path, rules: list[ExtractRule]) -> dict[str, int]:
    """Extract the selected members of ``archive`` under ``root``; returns {destination: size} of all of them."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive}: not a readable zip ({exc})") from exc
    outputs: dict[str, int] = {}
    with zf:
        for info, rel in planned_members(zf, rules, archive.name):
            dest = root / rel
            outputs[rel] = info.file_size
            if dest.is_file() and dest.stat().st_size == info.file_size and _crc32(dest) == info.CRC:
                continue  # extracted before with the same bytes (a same-size file with other bytes is replaced)
            dest.parent.mkdir(parents=True, exist_ok=True)
            for stale in dest.parent.glob(f".{glob.escape(dest.name)}{TMP_MARK}*"):  # left by a killed extraction
                stale.unlink(missing_ok=True)
            try:
                with atomic_write(dest) as tmp, zf.open(info) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except OSError as exc:
                raise_disk_full(exc, dest)
                raise
            except zipfile.BadZipFile as exc:
                raise DownloadError(f"{archive.name}: entry {info.filename!r} is corrupt ({exc})") from exc
    return outputs


def _crc32(path: Path) -> int:
    """The CRC-32 of a file, as a zip directory records it for each member."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc
