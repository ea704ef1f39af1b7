"""A Zenodo record as a download source, through the record's JSON API ``<host>/api/records/<id>``.

The answer's ``files`` is a list of ``{"key", "size", "checksum": "md5:<hex>", "links": {"self": <url>}}``.
Variants seen since Zenodo moved to InvenioRDM (2023) are read too: the list nested as ``files.entries``,
``filename``/``filesize`` for ``key``/``size``, a bare md5 hex checksum, and a ``links.self`` naming the file by an
internal id (which did not download; zenodo/zenodo#2486): the URL is ``links.content``, else ``links.self`` when it
ends in ``/content``, else the documented ``<host>/api/records/<id>/files/<key>/content``. Sizes and checksums come
from this answer only, never from the code; ``count`` checks the record still holds what the corpus expects.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cfnsr.download.extract import ExtractRule, rules_from
from cfnsr.download.http import DownloadError, HttpClient
from cfnsr.download.sources import RemoteFile

ARCHIVE_DIR = ".download"
_MD5 = re.compile(r"[0-9a-f]{32}")


class ZenodoRecord:
    """The files of Zenodo record ``record`` whose key matches ``files`` (fnmatch), expected ``count`` of them,
    extracted by ``extract`` rules (``[{match, to}]``, see ``cfnsr.download.extract``)."""

    def __init__(self, *, record: int, host: str, files: str, count: int,
                 extract: Sequence[Mapping[str, str]]) -> None:
        self.record = int(record)
        self.host = host.rstrip("/")
        self.pattern = files
        self.count = int(count)
        self.rules: list[ExtractRule] | None = rules_from(extract)
        self.key = f"zenodo-{self.record}"
        # What a finished file was made with: other settings (e.g. other extract rules) make it unfinished.
        self.settings = {"record": self.record, "files": self.pattern, "count": self.count,
                         "extract": [[r.match, r.to] for r in self.rules]}

    @property
    def api_url(self) -> str:
        return f"{self.host}/api/records/{self.record}"

    def list_files(self, client: HttpClient, *, workers: int, cache: dict[str, Any]) -> list[RemoteFile]:
        """The matching files with their sizes and md5 checksums, sorted by key (one request: ``workers`` and
        ``cache`` are unused)."""
        answer = client.get_json(self.api_url)
        entries = _entries(answer, client.url(self.api_url))
        out = []
        for i, entry in enumerate(entries):
            where = f"{client.url(self.api_url)}: files[{i}]"
            key = _field(entry, "key" if "key" in entry else "filename", str, where)
            if not fnmatch.fnmatchcase(key, self.pattern):
                continue
            size = _field(entry, "size" if "size" in entry else "filesize", int, where)
            checksum = _field(entry, "checksum", str, where)
            if _MD5.fullmatch(checksum):
                checksum = f"md5:{checksum}"
            if not checksum.startswith("md5:") or not _MD5.fullmatch(checksum[4:]):
                raise DownloadError(f"{where} ({key}): checksum {checksum!r} is not md5:<hex>")
            links = entry.get("links") if isinstance(entry.get("links"), dict) else {}
            self_link = links.get("self") if str(links.get("self", "")).endswith("/content") else None
            url = links.get("content") or self_link or f"{self.api_url}/files/{key}/content"
            out.append(RemoteFile(name=key, url=url, size=size, checksum=checksum, dest=f"{ARCHIVE_DIR}/{key}"))
        out.sort(key=lambda f: f.name)
        if len(out) != self.count:
            raise DownloadError(f"{client.url(self.api_url)}: expected {self.count} files matching {self.pattern!r}, "
                                f"the record lists {len(out)}: {[f.name for f in out][:6]}")
        return out


def _entries(answer: Any, url: str) -> list[dict[str, Any]]:
    files = answer.get("files") if isinstance(answer, dict) else None
    if isinstance(files, dict):
        files = files.get("entries")
        if isinstance(files, dict):
            files = list(files.values())
    if not isinstance(files, list) or not all(isinstance(e, dict) for e in files):
        raise DownloadError(f"{url}: the answer has no file list ('files'); is this a Zenodo record API URL?")
    return files


def _field(entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = entry.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DownloadError(f"{where}: {key!r} is {value!r}, expected a {kind.__name__}")
    return value
