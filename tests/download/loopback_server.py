"""A real HTTP server on 127.0.0.1 for the download tests: Zenodo-shaped record JSON, a GitHub-shaped git-lfs
repository, Range requests with ETag/If-Range, a request log, and fault injection per path."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Logged:
    """One request as the server saw it: path (no query), headers, status, body bytes sent."""

    path: str
    headers: dict[str, str]
    status: int
    sent: int


@dataclass
class Faults:
    """Per-path faults. drop: after N body bytes close the connection (once per entry, counted down).
    corrupt: serve a flipped byte for the next N GETs. status: answer this status. ignore_range: always 200.
    before_body: a hook called before the body is sent. fail_times: answer 503 for the next N GETs."""

    drop: dict[str, list[int]] = field(default_factory=dict)
    corrupt: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)
    before_body: dict[str, Callable[[], None]] = field(default_factory=dict)
    fail_times: dict[str, int] = field(default_factory=dict)


class Server:
    """Serves ``routes`` (path -> bytes) on a loopback port; ``url`` is its base URL."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.log: list[Logged] = []
        self.faults = Faults()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def requests_for(self, path: str) -> list[Logged]:
        return [r for r in self.log if r.path == path]

    # Zenodo: GET /api/records/<id> -> {"id", "metadata", "files": [{"key", "size", "checksum", "links"}]}
    def add_zenodo_record(self, record: int, files: Mapping[str, bytes]) -> dict[str, str]:
        """Publish ``files`` as Zenodo record ``record``; returns {key: content path}. Links name zenodo.org, as
        the real API does, so only ``download.mirror`` brings the client here."""
        entries, paths = [], {}
        for key, data in files.items():
            path = f"/api/records/{record}/files/{key}/content"
            self.routes[path] = data
            paths[key] = path
            entries.append({"id": hashlib.md5(key.encode()).hexdigest(), "key": key, "size": len(data),
                            "checksum": f"md5:{hashlib.md5(data).hexdigest()}",
                            "links": {"self": f"https://zenodo.org{path}"}})
        body = {"id": record, "metadata": {"title": f"record {record}", "license": {"id": "cc-by-nc-sa-4.0"}},
                "files": entries, "links": {"self": f"https://zenodo.org/api/records/{record}"}}
        self.routes[f"/api/records/{record}"] = json.dumps(body).encode()
        return paths

    # GitHub: tree API, raw files (LFS pointers for LFS paths), media files.
    def add_github_repo(self, owner: str, repo: str, ref: str, files: Mapping[str, bytes], lfs: set[str]) -> None:
        tree = []
        for path, data in files.items():
            raw = data
            if path in lfs:
                raw = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\n"
                       f"size {len(data)}\n").encode()
                self.routes[f"/media/{owner}/{repo}/{ref}/{path}"] = data
            self.routes[f"/{owner}/{repo}/{ref}/{path}"] = raw
            blob = hashlib.sha1(f"blob {len(raw)}\0".encode() + raw).hexdigest()
            tree.append({"path": path, "mode": "100644", "type": "blob", "sha": blob, "size": len(raw),
                         "url": f"https://api.github.com/repos/{owner}/{repo}/git/blobs/{blob}"})
        for folder in sorted({p.rsplit("/", 1)[0] for p in files if "/" in p}):
            tree.append({"path": folder, "mode": "040000", "type": "tree", "sha": "0" * 40})
        body = {"sha": "f" * 40, "url": "", "tree": tree, "truncated": False}
        self.routes[f"/repos/{owner}/{repo}/git/trees/{ref}"] = json.dumps(body).encode()


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def _finish(self, status: int, headers: dict[str, str], body: bytes, sent: int | None = None) -> None:
            with server._lock:
                server.log.append(Logged(self._path, dict(self.headers), status, len(body) if sent is None else sent))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self._path = urlsplit(self.path).path
            f = server.faults
            path = self._path
            if path in f.status:
                self._finish(f.status[path], {"Content-Length": "0"}, b"")
                return
            if f.fail_times.get(path, 0) > 0:
                f.fail_times[path] -= 1
                self._finish(503, {"Content-Length": "0"}, b"")
                return
            data = server.routes.get(path)
            if data is None:
                self._finish(404, {"Content-Length": "0"}, b"")
                return
            if f.corrupt.get(path, 0) > 0:
                f.corrupt[path] -= 1
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            etag = f'"{hashlib.md5(server.routes[path]).hexdigest()}"'
            start, status = 0, 200
            rng = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if rng and path not in f.ignore_range and (if_range is None or if_range == etag):
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self._finish(416, {"Content-Length": "0", "Content-Range": f"bytes */{len(data)}"}, b"")
                    return
                status = 206
            body = data[start:]
            headers = {"Content-Length": str(len(body)), "ETag": etag, "Accept-Ranges": "bytes"}
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            drops = f.drop.get(path)
            cut = drops.pop(0) if drops else None
            if path in f.before_body:
                f.before_body[path]()
            self._finish(status, headers, body, sent=min(cut, len(body)) if cut is not None else None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serving() -> Iterator[Server]:
    """A started server, shut down after the block."""
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


def zip_bytes(members: Mapping[str, bytes]) -> bytes:
    """A zip (deflated, as Zenodo's RAVDESS zips) holding ``members`` by entry name."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
