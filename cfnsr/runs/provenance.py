"""Where a run's numbers come from beyond its recipe: the code version, the effective batch, the initialisation.

* :func:`code_version`: the cfnsr package version, the git commit of the source tree and whether it had uncommitted
  changes. Read once per process (cached); git may be absent or the code may not sit in a git checkout: then
  ``commit`` and ``dirty`` are null, never an error.
* :func:`effective_batch`: clips per optimiser step, ``data.batch_size x devices x nodes x accumulate_grad_batches``.
  The recipe keeps the batch size but not the device count (an execution detail otherwise), so resume and the report
  compare this product as well.
* :func:`init_provenance_key`: the part of a record's ``init_sources`` (which checkpoints initialised the run) that
  distinguishes report rows: per initialised part, the source's recipe hash (its run id differs per fold, the recipe
  is what is shared).

Standard library only: the report reads these without the training stack.
"""

from __future__ import annotations

import functools
import importlib.metadata
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGE = "cfnsr"
_SOURCE_DIR = Path(__file__).resolve().parents[1]  # the cfnsr package folder of the running code


def _git(*args: str) -> str | None:
    """Output of ``git -C <package dir> args`` or None (no git, not a checkout, timeout, any failure)."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run([git, "-C", str(_SOURCE_DIR), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """``{"package": "0.1.0" | None, "commit": "<40 hex>" | None, "dirty": bool | None}``, computed once per process.

    ``dirty`` is true when tracked files differ from the commit (untracked files are not counted: they are not part
    of the package unless added).
    """
    try:
        package: str | None = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        package = None
    head = _git("rev-parse", "HEAD")
    commit = head.strip() if head and head.strip() else None
    dirty: bool | None = None
    if commit is not None:
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status.strip())
    return {"package": package, "commit": commit, "dirty": dirty}


def format_code_version(version: Mapping[str, Any] | None) -> str:
    """``0.1.0@1a2b3c4d5e6f`` (``+dirty`` when uncommitted changes), ``unknown`` when nothing was recorded."""
    if not isinstance(version, Mapping) or not any(version.get(k) is not None for k in ("package", "commit")):
        return "unknown"
    commit = version.get("commit")
    text = f"{version.get('package') or '?'}@{str(commit)[:12] if commit else 'no-git'}"
    return text + ("+dirty" if version.get("dirty") else "")


EFFECTIVE_BATCH_KEYS = ("data.batch_size", "trainer.devices", "trainer.num_nodes", "trainer.accumulate_grad_batches")


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def device_count(devices: Any) -> int | None:
    """The number of devices a Lightning ``devices`` value asks for: an int, a list of ids, "2" or "0,1"; None for
    "auto"/-1 (decided by the machine)."""
    if isinstance(devices, bool):
        return None
    if isinstance(devices, int):
        return devices if devices > 0 else None
    if isinstance(devices, (list, tuple)):
        return len(devices) or None
    if isinstance(devices, str):
        text = devices.strip()
        if text.isdigit():
            return int(text) or None
        if "," in text:
            return len([p for p in text.split(",") if p.strip()]) or None
    return None


def effective_batch_parts(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The factors of the effective batch from a resolved config; absent ``num_nodes`` and
    ``accumulate_grad_batches`` are 1 (Lightning's behaviour without them)."""
    devices = _get(cfg, "trainer.devices")
    nodes = _get(cfg, "trainer.num_nodes")
    accumulate = _get(cfg, "trainer.accumulate_grad_batches")
    return {"data.batch_size": _get(cfg, "data.batch_size"),
            "trainer.devices": device_count(devices) if devices is not None else 1,
            "trainer.num_nodes": 1 if nodes is None else nodes,
            "trainer.accumulate_grad_batches": 1 if accumulate is None else accumulate}


def effective_batch(cfg: Mapping[str, Any]) -> int | None:
    """``batch_size x devices x nodes x accumulate_grad_batches`` of a resolved config; None when a factor is not a
    fixed positive integer (``devices: auto``)."""
    parts = effective_batch_parts(cfg).values()
    if not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in parts):
        return None
    out = 1
    for p in parts:
        out *= p
    return out


def init_provenance_key(init_sources: Any) -> str | None:
    """The row-key part of a record's ``init_sources`` (``{part: {"run_id", "recipe_hash", ...}}``): ``part=recipe
    hash`` per initialised part, sorted, ``unknown`` for a source without a recorded recipe; None without sources
    (a record from before they were recorded, or no initialisation)."""
    if not isinstance(init_sources, Mapping) or not init_sources:
        return None
    items = []
    for part, src in sorted(init_sources.items()):
        h = src.get("recipe_hash") if isinstance(src, Mapping) else None
        items.append(f"{part}={h or 'unknown'}")
    return ",".join(items)


def effective_batch_difference(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """``"effective_batch: 16 vs 32 (trainer.devices: 1 vs 2)"`` when two resolved configs step the optimiser on
    different numbers of clips (or, with a device count left to the machine, name different factors); else None."""
    a, b = effective_batch(saved), effective_batch(wanted)
    raw_a = {k: _get(saved, k) for k in EFFECTIVE_BATCH_KEYS}
    raw_b = {k: _get(wanted, k) for k in EFFECTIVE_BATCH_KEYS}
    pa, pb = effective_batch_parts(saved), effective_batch_parts(wanted)
    if a is not None and b is not None and a == b:
        return None
    if (a is None or b is None) and a == b and raw_a == raw_b:
        return None
    shown_a = {k: raw_a[k] if pa[k] is None else pa[k] for k in EFFECTIVE_BATCH_KEYS}
    shown_b = {k: raw_b[k] if pb[k] is None else pb[k] for k in EFFECTIVE_BATCH_KEYS}
    changed = [f"{k}: {shown_a[k]} vs {shown_b[k]}" for k in EFFECTIVE_BATCH_KEYS if shown_a[k] != shown_b[k]]
    def fmt(v: int | None) -> str:
        return "unknown (devices decided by the machine)" if v is None else str(v)

    return f"effective_batch: {fmt(a)} vs {fmt(b)} ({'; '.join(changed) or 'same factors'})"
