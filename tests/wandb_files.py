"""Read wandb's offline run files (``wandb/offline-run-*/run-<id>.wandb``) without the network: the tests check
what a ``wandb sync`` would upload.

The file is a LevelDB-style log of protobuf ``Record`` messages: a 7-byte file header (``:W&B``, magic, version),
then 32 KiB blocks of chunks, each with a 7-byte header (CRC32, length, type: full / first / middle / last).
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb2

_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[Any]:
    """The ``wandb_internal_pb2.Record`` messages of one ``.wandb`` file, in order."""
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a wandb run file"
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block's tail too short for a chunk header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:  # zero fill after the last record
            break
        buf = chunk if kind in (_FULL, _FIRST) else buf + chunk
        if kind in (_FULL, _LAST):
            rec = pb2.Record()
            rec.ParseFromString(buf)
            yield rec


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_run(run_dir: Path) -> dict[str, Any]:
    """What one offline run holds: id, group, name, job type, summary (last values), metric definitions
    ({name or glob: step metric}), history rows, artifacts (name, type, metadata, aliases, files)."""
    (path,) = Path(run_dir).glob("run-*.wandb")
    # wandb's service process writes the file after wandb.finish() returns: wait for the run's exit record.
    deadline = time.monotonic() + 60
    while not any(r.WhichOneof("record_type") == "exit" for r in records(path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    out: dict[str, Any] = {"summary": {}, "metrics": {}, "history": [], "artifacts": []}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.update(id=r.run_id, group=r.run_group, name=r.display_name, job_type=r.job_type)
        elif kind == "summary":
            out["summary"].update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "metric":
            out["metrics"][rec.metric.name or rec.metric.glob_name] = rec.metric.step_metric
        elif kind == "history":
            out["history"].append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "artifact":
            a = rec.artifact
            out["artifacts"].append({"name": a.name, "type": a.type, "aliases": list(a.aliases),
                                     "metadata": json.loads(a.metadata or "{}"),
                                     "files": [m.path for m in a.manifest.contents]})
    return out
