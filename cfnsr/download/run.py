"""The download job: ``python download.py data=<corpus> data.root=<dir>`` (config: ``conf/download.yaml`` and the
corpus's source in ``conf/download/<corpus>.yaml``).

Order of work: print the licence; per source, decide from ``<root>/.download/<source>.json`` whether everything is
already there (then no request at all); else list the files (record API / repository tree), check free space for
what is missing, download several files at once (resumed, verified, retried once on a checksum mismatch), extract
archives, and record each finished file in the state file at once, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from cfnsr.download import disk, verify
from cfnsr.download.extract import extract_members, extracted_size
from cfnsr.download.http import DownloadError, HttpClient
from cfnsr.download.progress import DownloadProgress
from cfnsr.download.sources import RemoteFile, Source
from cfnsr.files import write_text_atomic

STATE_DIR = ".download"


class _State:
    """``<root>/.download/<key>.json``: the last file list, the finished files with what they produced, and the
    source's cache (pointer ids). Evidence of earlier work, re-checked against the disk before it is trusted."""

    def __init__(self, root: Path, key: str, settings: dict[str, Any]) -> None:
        self.path = root / STATE_DIR / f"{key}.json"
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the file
        self._lock = threading.Lock()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        data = data if isinstance(data, dict) else {}
        self.files: list[dict[str, Any]] = [f for f in data.get("files", []) if isinstance(f, dict)]
        self.done: dict[str, Any] = data.get("done", {}) if isinstance(data.get("done"), dict) else {}
        self.cache: dict[str, Any] = data.get("cache", {}) if isinstance(data.get("cache"), dict) else {}

    def save(self) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps({"files": self.files, "done": self.done, "cache": self.cache},
                                                    indent=1, sort_keys=True))

    def is_done(self, f: RemoteFile | dict[str, Any], root: Path) -> bool:
        """``f`` was finished with the same listing entry and everything it produced is on disk with its size."""
        entry = f if isinstance(f, dict) else f.to_json()
        done = self.done.get(entry["name"])
        if not isinstance(done, dict) or done.get("file") != entry or done.get("settings") != self.settings:
            return False
        outputs = done.get("outputs")
        return isinstance(outputs, dict) and bool(outputs) and all(
            (root / rel).is_file() and (root / rel).stat().st_size == size for rel, size in outputs.items())

    def mark_done(self, f: RemoteFile, outputs: dict[str, int], sha256: str | None) -> None:
        with self._lock:
            self.done[f.name] = {"file": f.to_json(), "settings": self.settings, "outputs": outputs,
                                 **({"sha256": sha256} if sha256 else {})}
        self.save()


def _part(root: Path, f: RemoteFile) -> Path:
    return root / STATE_DIR / "parts" / f"{f.dest}.part"


def _fetch_verified(client: HttpClient, root: Path, f: RemoteFile, progress: DownloadProgress) -> Path:
    """Download ``f`` to its final path (verified, then renamed into place); a second checksum failure raises."""
    final = root / f.dest
    if final.is_file() and verify.problem(final, f.size, f.checksum) is None:
        return final  # e.g. an archive kept, or downloaded by a run killed before extracting it
    part = _part(root, f)
    for attempt in (1, 2):
        started = time.monotonic()
        client.fetch_to(f.url, part, f.size, progress.advance)
        why = verify.problem(part, f.size, f.checksum)
        if why is None:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, final)
            part.with_name(part.name + ".json").unlink(missing_ok=True)
            progress.file_done(f.name, final.stat().st_size, time.monotonic() - started)
            return final
        progress.advance(-part.stat().st_size)
        part.unlink()
        part.with_name(part.name + ".json").unlink(missing_ok=True)
        if attempt == 1:
            progress.note(f"{f.name}: {why}; downloading it once more")
    raise DownloadError(f"checksum mismatch for {f.name} twice (from {client.url(f.url)}): {why}. The file was "
                        f"removed; the source or the mirror serves another file than its listing says")


def _one_file(client: HttpClient, root: Path, source: Source, f: RemoteFile, state: _State, keep_archives: bool,
              progress: DownloadProgress) -> None:
    path = _fetch_verified(client, root, f, progress)
    sha256 = None if f.checksum else verify.file_digest(path, "sha256")  # a source without checksums: record one
    if source.rules is None:
        state.mark_done(f, {f.dest: path.stat().st_size}, sha256)
        return
    need = extracted_size(path, source.rules)
    disk.require_free(root, need, f"the members of {f.name} to extract", 0)
    outputs = extract_members(path, root, source.rules)
    if not outputs:
        raise DownloadError(f"{f.name}: no member matches the extract rules {source.rules}")
    state.mark_done(f, outputs, sha256)
    if not keep_archives:
        path.unlink()


def download_source(client: HttpClient, root: Path, source: Source, *, workers: int, keep_archives: bool,
                    reserve: int, out: Any = print) -> dict[str, int]:
    """Bring one source's files under ``root``; returns counts {"files", "downloaded", "requests_skipped"}."""
    state = _State(root, source.key, source.settings)
    if state.files and all(state.is_done(f, root) for f in state.files):
        out(f"{source.key}: all {len(state.files)} files present (recorded in {state.path}); nothing to download")
        return {"files": len(state.files), "downloaded": 0}
    files = source.list_files(client, workers=workers, cache=state.cache)
    state.files = [f.to_json() for f in files]
    state.save()
    todo = [f for f in files if not state.is_done(f, root)]
    # Space: what is left to download, plus (archives) up to the archive's size again for its extracted members.
    to_fetch = sum(max(0, (f.size or 0) - (_part(root, f).stat().st_size if _part(root, f).is_file() else 0))
                   for f in todo if not (root / f.dest).is_file())
    extracting = sum(f.size or 0 for f in todo) if source.rules is not None else 0
    disk.require_free(root, to_fetch + extracting,
                      f"{disk.gib(to_fetch)} to download" + (f" + up to {disk.gib(extracting)} extracted"
                                                             if extracting else ""), reserve)
    out(f"{source.key}: {len(files)} files, {len(files) - len(todo)} present, {len(todo)} to fetch "
        f"({disk.gib(to_fetch)}) into {root}")
    errors: list[str] = []
    with DownloadProgress(sum(f.size or 0 for f in todo)) as progress:
        progress.advance(sum(_part(root, f).stat().st_size for f in todo if _part(root, f).is_file()))
        pool = ThreadPoolExecutor(max(1, workers))
        try:
            jobs = [pool.submit(_one_file, client, root, source, f, state, keep_archives, progress) for f in todo]
            for job in as_completed(jobs):
                exc = job.exception()
                if isinstance(exc, DownloadError):
                    errors.append(str(exc))  # the other files go on; all failures are listed at the end
                elif exc is not None:
                    raise exc
        except BaseException:
            # Ctrl-C or a bug: stop the workers at their next block instead of finishing every file first.
            progress.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise DownloadError(f"{len(errors)} of {len(todo)} files failed{more}:\n  " + "\n  ".join(errors[:5]))
    return {"files": len(files), "downloaded": len(todo)}


def download(cfg: DictConfig, out: Any = print) -> dict[str, dict[str, int]]:
    """Download every source of ``cfg.download`` into ``cfg.data.root``; the licence is printed first."""
    dl = cfg.download
    root = Path(cfg.data.root)
    out(f"{cfg.data.name}: {dl.licence.strip()}")
    client = HttpClient(retries=dl.retries, backoff=dl.backoff, timeout=dl.timeout, mirror=dl.mirror)
    sources = {name: instantiate(node) for name, node in dl.sources.items()}
    root.mkdir(parents=True, exist_ok=True)
    return {name: download_source(client, root, src, workers=dl.workers, keep_archives=dl.keep_archives,
                                  reserve=int(dl.reserve_gib * disk.GIB), out=out)
            for name, src in sources.items()}


def main(cfg: DictConfig) -> None:
    """The entry point's body: a download that cannot complete ends with exit 2 and its reason."""
    if "download" not in cfg or "sources" not in cfg.download:
        print(f"download.py: no download source for data={cfg.data.name} (conf/download/<corpus>.yaml)",
              file=sys.stderr)
        sys.exit(2)
    try:
        download(cfg)
    except (DownloadError, ValueError, OSError) as exc:
        print(f"download.py: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"done: python preprocess.py data={cfg.data.name} data.root={cfg.data.root}")
