"""The corpus: generate (or complete) every selected clip in worker processes; resumable, checked against its config."""

from __future__ import annotations

import json
import sys
from concurrent.futures import Executor, as_completed
from pathlib import Path
from typing import Any

from cfnsr.data.ravdess import RavdessName
from cfnsr.data.synthetic.config import (
    _PENDING_FILE,
    CONFIG_FILE,
    SyntheticConfig,
    SyntheticConfigMismatch,
    make_config,
    selected_names,
)
from cfnsr.data.synthetic.writers import clip_paths, write_clip
from cfnsr.data.worker_pool import process_pool
from cfnsr.files import TMP_MARK, write_text_atomic


def _write_batch(root: str, fields: list[tuple[int, ...]], cfg: SyntheticConfig) -> int:
    written = 0
    for f in fields:
        name = RavdessName(*f)
        try:
            written += write_clip(root, name, cfg)
        except Exception as exc:  # name the clip: a bare traceback from a worker does not say which one failed
            raise RuntimeError(f"synthetic clip {name.stem}: {type(exc).__name__}: {exc}") from exc
    return written


def _check_config(root: Path, cfg: SyntheticConfig) -> None:
    wanted = cfg.to_json()
    for fname in (CONFIG_FILE, _PENDING_FILE):
        path = root / fname
        if not path.exists():
            continue
        try:
            found = json.loads(path.read_text(encoding="utf-8")).get("config")
        except (OSError, ValueError) as exc:
            raise SyntheticConfigMismatch(f"{path} is unreadable ({exc}); delete {root} or choose another root") \
                from exc
        if found != wanted:
            found = found if isinstance(found, dict) else {}
            diff = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            detail = "; ".join(f"{k}: found {found.get(k)!r}, wanted {wanted.get(k)!r}" for k in diff)
            raise SyntheticConfigMismatch(
                f"{root} already holds a synthetic corpus generated with a different config ({path.name}: {detail}). "
                f"Delete the folder or choose another root.")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _remove_stale_tmp(root: Path) -> None:
    """Temp files of an interrupted run (their writer is gone; a clip is only ever final after os.replace)."""
    for folder in [root, root / "landmarks", *root.glob("Actor_*")]:
        if folder.is_dir():
            for tmp in folder.glob(f".*{TMP_MARK}*"):
                tmp.unlink(missing_ok=True)


def _pool(workers: int) -> Executor:
    """Worker processes for clip rendering (forkserver, dying with this process: see ``cfnsr.data.worker_pool``)."""
    return process_pool(workers, preload=[__name__])


def _render(root: Path, todo: list[Any], cfg: SyntheticConfig, workers: int, progress: bool) -> None:
    """Write the clips ``todo`` under ``root``, in this process (workers <= 1) or over a process pool."""
    if not todo:
        return  # complete: nothing to render, no pool
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc=f"synthetic corpus -> {root}", unit="clip", file=sys.stderr,
                   disable=not sys.stderr.isatty())  # a bar in a log file is one endless line
    try:
        if workers <= 1 or len(todo) <= 1:
            for n in todo:
                _write_batch(str(root), [n.fields], cfg)
                if bar:
                    bar.update(1)
            return
        # Small batches: cheap task dispatch, yet both workers stay busy until the end.
        size = max(1, min(8, len(todo) // (workers * 4)))
        batches = [[n.fields for n in todo[i:i + size]] for i in range(0, len(todo), size)]
        with _pool(workers) as pool:
            futures = {pool.submit(_write_batch, str(root), b, cfg): len(b) for b in batches}
            for fut in as_completed(futures):
                fut.result()
                if bar:
                    bar.update(futures[fut])
    finally:
        if bar:
            bar.close()


def _mark_complete(root: Path, cfg: SyntheticConfig, clips: int) -> None:
    """Write the interactions manifest (preset ``interactions``), then ``synthetic.json``: a corpus marked
    complete always has its manifest. A complete corpus is left untouched: callers run this before every run."""
    if cfg.preset == "interactions":
        from cfnsr.data.synthetic.interactions import MANIFEST_FILE, manifest

        path = root / MANIFEST_FILE
        if not path.exists() or json.loads(path.read_text(encoding="utf-8")) != manifest():
            _write_json(path, manifest())
    record = {"config": cfg.to_json(), "clips": clips}
    try:
        unchanged = json.loads((root / CONFIG_FILE).read_text(encoding="utf-8")) == record
    except (OSError, ValueError):
        unchanged = False
    if not unchanged:
        _write_json(root / CONFIG_FILE, record)


def generate_corpus(root: str | Path, workers: int = 2, progress: bool = True, cfg: SyntheticConfig | None = None,
                    **config: Any) -> Path:
    """Generate (or complete) the synthetic corpus under ``root``; returns ``root`` as a Path.

    config: ``SyntheticConfig`` fields as keywords (override ``cfg`` when both are given).
    Clips whose files exist are skipped (resume). Raises ``SyntheticConfigMismatch`` when ``root`` was generated with
    another config. ``<root>/synthetic.json`` ({"config": ..., "clips": N}) is written last, when every clip exists.
    """
    cfg = make_config(cfg, **config)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _check_config(root, cfg)
    _remove_stale_tmp(root)
    # Recorded before any clip, so that an interrupted run cannot be resumed with a different config either.
    if not (root / CONFIG_FILE).exists():
        _write_json(root / _PENDING_FILE, {"config": cfg.to_json()})

    names = selected_names(cfg)
    todo = [n for n in names if not all(p.exists() for p in clip_paths(root, n))]
    _render(root, todo, cfg, workers, progress)
    _mark_complete(root, cfg, len(names))
    (root / _PENDING_FILE).unlink(missing_ok=True)
    return root
