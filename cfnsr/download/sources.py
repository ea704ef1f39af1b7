"""What a download source lists: ``RemoteFile`` entries (name, URL, size, checksum, where it lands), and the
source classes the download YAMLs instantiate (``_target_``): ``zenodo.ZenodoRecord``, ``github_lfs.GitHubLfsRepo``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from cfnsr.download.extract import ExtractRule
from cfnsr.download.http import HttpClient


@dataclass(frozen=True)
class RemoteFile:
    """One file of a source.

    name: the source's own name for it (shown in messages). url: where it is fetched (before the mirror).
    size: bytes, or None when the source does not say. checksum: ``<algorithm>:<hex>`` or None.
    dest: the path under the corpus root (plain files) or under ``<root>/.download/`` (archives).
    """

    name: str
    url: str
    size: int | None
    checksum: str | None
    dest: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Source(Protocol):
    """A download source: a key for its state file, its files, and how to extract an archive (None: no archive)."""

    key: str
    rules: list[ExtractRule] | None
    settings: dict[str, Any]  # JSON-able: a finished file counts only under the same settings

    def list_files(self, client: HttpClient, *, workers: int, cache: dict[str, Any]) -> list[RemoteFile]: ...
