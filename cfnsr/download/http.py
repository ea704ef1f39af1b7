"""A small HTTP client for corpus downloads: retries with exponential backoff, resumable files, a mirror host.

Standard library only (``urllib``), so the download job needs nothing beyond the base install.

* ``fetch_to`` resumes a partial file with ``Range: bytes=<have>-`` and ``If-Range: <validator>`` (the ETag or
  Last-Modified of the response that started the file, kept in ``<part>.json``). A ``206`` whose ``Content-Range``
  starts at ``<have>`` is appended; a ``200`` (a server that ignores ``Range``, or a file changed since, as
  ``If-Range`` says) restarts the file cleanly from byte 0; a ``416`` restarts it too.
* A dropped connection, a timeout, a short body, ``408``/``429``/``5xx``: retried ``retries`` times, waiting
  ``backoff * 2**k`` seconds. Any other status (``404``, ``403``) stops at once with the URL and status.
* ``mirror``: every URL's scheme and host are replaced by the mirror's (its path prefix is kept in front of the URL's
  path), so a local server or a site mirror serves the same paths.
"""

from __future__ import annotations

import email.utils
import errno
import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cfnsr.files import write_text_atomic

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(RuntimeError):
    """A download that cannot complete: the message names the URL or file and the reason."""


class DiskFullError(DownloadError):
    """No space left while writing a download or an extracted file."""


def _transient(exc: BaseException) -> bool:
    """Network trouble worth a retry (as opposed to a status the server meant, or a full disk)."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in _RETRY_STATUS
    return isinstance(exc, (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
                            socket.timeout, _ShortBody))


class _ShortBody(Exception):
    """The connection ended before Content-Length bytes arrived."""


def raise_disk_full(exc: OSError, path: Path) -> None:
    """Re-raise a write error as ``DiskFullError`` naming ``path`` when the disk is full; otherwise do nothing."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(f"disk full while writing {path}: free space on {path.parent} and run the same command "
                            f"again (finished files are kept, the partial one resumes)") from exc


class HttpClient:
    """Requests with retries and a mirror. ``timeout`` is per socket operation (seconds)."""

    def __init__(self, *, retries: int, backoff: float, timeout: float, mirror: str | None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.timeout = float(timeout)
        self.mirror = mirror.rstrip("/") if mirror else None
        self._sleep = sleep
        if self.mirror and not urllib.parse.urlsplit(self.mirror).netloc:
            raise ValueError(f"download.mirror={mirror!r}: expected a URL such as http://127.0.0.1:8000")

    def url(self, url: str) -> str:
        """``url`` with the mirror's scheme and host (and path prefix) in place of its own."""
        if not self.mirror:
            return url
        parts = urllib.parse.urlsplit(url)
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.mirror + rest

    def _open(self, url: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        req = urllib.request.Request(url, headers={"User-Agent": "cfnsr-download", **(headers or {})})
        return urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310 (http(s) URLs from the config)

    def _retrying(self, url: str, attempt_fn: Callable[[], Any]) -> Any:
        """Run ``attempt_fn`` until it returns, retrying transient failures with exponential backoff."""
        for attempt in range(self.retries + 1):
            try:
                return attempt_fn()
            except urllib.error.HTTPError as exc:
                if not _transient(exc):
                    raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from exc
                last: BaseException = exc
            except DownloadError:
                raise
            except Exception as exc:  # noqa: BLE001 (classified just below)
                if not _transient(exc):
                    raise
                last = exc
            if attempt < self.retries:
                self._sleep(self.backoff * 2 ** attempt)
        raise DownloadError(f"{url}: gave up after {self.retries + 1} attempts; last error: {last!r}")

    def get_bytes(self, url: str) -> bytes:
        """The body of ``GET url`` (mirrored), read whole; for listings and pointer files, not for media."""
        url = self.url(url)

        def attempt() -> bytes:
            with self._open(url) as resp:
                body = resp.read()
                expected = resp.headers.get("Content-Length")
                if expected is not None and len(body) != int(expected):
                    raise _ShortBody(f"{len(body)} of {expected} bytes")
                return body

        return self._retrying(url, attempt)

    def get_json(self, url: str) -> Any:
        """``GET url`` parsed as JSON; a body that is not JSON is an error naming the URL."""
        body = self.get_bytes(url)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise DownloadError(f"{self.url(url)}: expected JSON, got {body[:80]!r}") from exc

    def fetch_to(self, url: str, part: Path, size: int | None, on_bytes: Callable[[int], None]) -> None:
        """Download ``url`` (mirrored) into ``part``, resuming what is there. ``on_bytes(n)`` reports progress
        (negative when a restart throws bytes away). Returns when the server sent the whole body."""
        url = self.url(url)
        meta_path = part.with_name(part.name + ".json")
        meta = _read_meta(meta_path)
        if meta.get("url") != url and part.exists():
            # A partial file from another URL (or without a record of its source) is not resumable.
            on_bytes(-part.stat().st_size)
            part.unlink()

        def attempt() -> None:
            have = part.stat().st_size if part.exists() else 0
            if size is not None and have == size:
                return
            if size is not None and have > size:
                on_bytes(-have)
                part.unlink()
                have = 0
            headers = {}
            validator = _read_meta(meta_path).get("validator")
            if have:
                headers["Range"] = f"bytes={have}-"
                if validator:
                    headers["If-Range"] = validator
            try:
                resp = self._open(url, headers)
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and have:  # our offset is past the server's file: start again
                    on_bytes(-have)
                    part.unlink()
                    raise _ShortBody("416 Range Not Satisfiable; restarting") from exc
                raise
            with resp:
                mode = "ab"
                if resp.status == 206:
                    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
                    if not m or int(m.group(1)) != have:
                        raise DownloadError(f"{url}: asked for bytes {have}- but got Content-Range "
                                            f"{resp.headers.get('Content-Range')!r}")
                else:  # 200: the whole file; the partial bytes are worthless (Range ignored or file changed)
                    if have:
                        on_bytes(-have)
                    mode, have = "wb", 0
                    new_validator = resp.headers.get("ETag") or _http_date(resp.headers.get("Last-Modified"))
                    write_text_atomic(meta_path, json.dumps({"url": url, "validator": new_validator}))
                expected = resp.headers.get("Content-Length")
                got = _copy(resp, part, mode, on_bytes)
                if expected is not None and got != int(expected):
                    raise _ShortBody(f"{url}: connection closed after {got} of {expected} bytes")

        part.parent.mkdir(parents=True, exist_ok=True)
        if not meta_path.exists():
            write_text_atomic(meta_path, json.dumps({"url": url, "validator": None}))
        self._retrying(url, attempt)


def _copy(resp: http.client.HTTPResponse, part: Path, mode: str, on_bytes: Callable[[int], None]) -> int:
    got = 0
    try:
        with open(part, mode) as fh:
            while True:
                chunk = resp.read1(_CHUNK) if hasattr(resp, "read1") else resp.read(_CHUNK)
                if not chunk:
                    break
                fh.write(chunk)
                got += len(chunk)
                on_bytes(len(chunk))
    except OSError as exc:  # a full disk is named; network errors propagate to the retry loop
        raise_disk_full(exc, part)
        raise
    return got


def _http_date(value: str | None) -> str | None:
    """A Last-Modified value usable in If-Range (a valid HTTP date), else None."""
    try:
        return value if value and email.utils.parsedate_to_datetime(value) is not None else None
    except (TypeError, ValueError):
        return None


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
