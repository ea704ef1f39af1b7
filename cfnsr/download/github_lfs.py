"""A GitHub repository whose media are in git-lfs (CREMA-D's public release) as a download source.

1. ``<api_host>/repos/<owner>/<repo>/git/trees/<ref>?recursive=1``: every blob's path, git blob id and size.
2. Each selected blob small enough to be an LFS pointer is read from ``<raw_host>/<owner>/<repo>/<ref>/<path>``;
   a pointer (``version https://git-lfs.github.com/spec/v1`` / ``oid sha256:<hex>`` / ``size <n>``) gives the
   media file's sha256 and size, fetched from ``<media_host>/media/<owner>/<repo>/<ref>/<path>``. A blob that is not
   a pointer is the file itself, fetched raw and checked against its git blob id (``gitsha1``) and size.

Pointers are remembered by their blob id (``cache``), so a later run reads the tree only.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cfnsr.download.http import DownloadError, HttpClient
from cfnsr.download.sources import RemoteFile

LFS_VERSION = "version https://git-lfs.github.com/spec/v1"
POINTER_MAX_BYTES = 1024  # git-lfs pointers are ~130 bytes; git-lfs itself never reads more than 1024 as one
_OID = re.compile(r"^oid sha256:([0-9a-f]{64})$", re.M)
_SIZE = re.compile(r"^size (\d+)$", re.M)


def parse_pointer(text: bytes, where: str) -> tuple[str, int] | None:
    """(sha256 hex, size) of a git-lfs pointer; None when ``text`` is not a pointer; an error naming ``where``
    when it starts like a pointer but lacks its oid or size."""
    try:
        body = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not body.startswith(LFS_VERSION):
        return None
    oid, size = _OID.search(body), _SIZE.search(body)
    if not oid or not size:
        raise DownloadError(f"{where}: a git-lfs pointer without 'oid sha256:<hex>' and 'size <n>': {body[:200]!r}")
    return oid.group(1), int(size.group(1))


class GitHubLfsRepo:
    """The blobs of ``owner/repo`` at ``ref`` whose path matches one of ``include`` (fnmatch on the path);
    every pattern must match at least one file."""

    def __init__(self, *, owner: str, repo: str, ref: str, api_host: str, raw_host: str, media_host: str,
                 include: Sequence[str]) -> None:
        self.owner, self.repo, self.ref = owner, repo, ref
        self.api_host, self.raw_host, self.media_host = (h.rstrip("/") for h in (api_host, raw_host, media_host))
        self.include = [str(p) for p in include]
        self.rules = None  # plain files: they land where the repository has them
        self.key = f"github-{owner}-{repo}"
        self.settings = {"owner": owner, "repo": repo, "ref": ref, "include": self.include}

    @property
    def tree_url(self) -> str:
        return f"{self.api_host}/repos/{self.owner}/{self.repo}/git/trees/{self.ref}?recursive=1"

    def _raw(self, path: str) -> str:
        return f"{self.raw_host}/{self.owner}/{self.repo}/{self.ref}/{path}"

    def _media(self, path: str) -> str:
        return f"{self.media_host}/media/{self.owner}/{self.repo}/{self.ref}/{path}"

    def list_files(self, client: HttpClient, *, workers: int, cache: dict[str, Any]) -> list[RemoteFile]:
        """The selected files with sizes and checksums. ``cache`` maps pointer blob ids to [sha256, size]; it is
        read and completed in place."""
        tree = client.get_json(self.tree_url)
        where = client.url(self.tree_url)
        if not isinstance(tree, dict) or not isinstance(tree.get("tree"), list):
            raise DownloadError(f"{where}: the answer has no 'tree' list; is this a GitHub git-trees API URL?")
        if tree.get("truncated"):
            raise DownloadError(f"{where}: the tree listing is truncated; cannot list every file")
        blobs = [e for e in tree["tree"] if isinstance(e, dict) and e.get("type") == "blob"]
        selected = []
        for pattern in self.include:
            hits = [e for e in blobs if fnmatch.fnmatchcase(str(e.get("path")), pattern)]
            if not hits:
                raise DownloadError(f"{where}: no file matches include pattern {pattern!r}")
            selected += [e for e in hits if e not in selected]
        for e in selected:
            if not isinstance(e.get("sha"), str) or not isinstance(e.get("size"), int):
                raise DownloadError(f"{where}: tree entry {e.get('path')!r} lacks its 'sha' or 'size'")
        probe = [e for e in selected if e["size"] <= POINTER_MAX_BYTES and e["sha"] not in cache]

        def read_pointer(entry: dict[str, Any]) -> tuple[str, Any]:
            body = client.get_bytes(self._raw(entry["path"]))
            pointer = parse_pointer(body, client.url(self._raw(entry["path"])))
            return entry["sha"], list(pointer) if pointer else None

        with ThreadPoolExecutor(max(1, workers)) as pool:
            cache.update(dict(pool.map(read_pointer, probe)))
        out = []
        for e in selected:
            pointer = cache.get(e["sha"]) if e["size"] <= POINTER_MAX_BYTES else None
            if pointer:
                out.append(RemoteFile(name=e["path"], url=self._media(e["path"]), size=int(pointer[1]),
                                      checksum=f"sha256:{pointer[0]}", dest=e["path"]))
            else:
                out.append(RemoteFile(name=e["path"], url=self._raw(e["path"]), size=e["size"],
                                      checksum=f"gitsha1:{e['sha']}", dest=e["path"]))
        return sorted(out, key=lambda f: f.name)
