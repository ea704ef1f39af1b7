"""Find stage-1 (unimodal) checkpoints in a directory of finished runs, for two-stage training."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cfnsr.builders.init_checks import speaker_id
from cfnsr.runs.checkpoint_files import CHECKPOINT_DIR, CheckpointError, load_checkpoint, run_id_of
from cfnsr.runs.record import FILENAME, read_record

_STREAM_OF = {"video_only": "video", "audio_only": "audio"}


def _actors(value: object) -> frozenset[int | str] | None:
    try:
        return frozenset(speaker_id(a) for a in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None


def run_checkpoint(record: dict, record_path: Path) -> str:
    """The selected checkpoint of a stage-1 record, only inside that run's folder and carrying its run id.

    The record's ``best_ckpt`` names the file; it is looked up in ``<the record's folder>/checkpoints/`` (so a moved
    sweep still works and a record can never point at another run's file). Raises ``CheckpointError`` naming both.
    """
    name = Path(str(record["best_ckpt"])).name
    path = record_path.parent / CHECKPOINT_DIR / name
    ckpt = load_checkpoint(path, require_run=False)
    if record.get("run_id") is None or run_id_of(ckpt) != record.get("run_id"):
        raise CheckpointError(
            f"init.from_runs: {record_path} names checkpoint {name}, but {path} carries run "
            f"{run_id_of(ckpt)!r}, not this record's run {record.get('run_id')!r}; refusing a checkpoint that is not "
            f"the run's own")
    return str(path)


def find_unimodal_checkpoints(
    runs_dir: str | Path, test_actors: Sequence[int], val_actors: Sequence[int], fold: int | None = None,
    seed: int | None = None, **match: str
) -> dict[str, str]:
    """``{"video": ckpt, "audio": ckpt}`` of the finished video_only/audio_only runs under ``runs_dir`` that tested
    on ``test_actors`` and validated on ``val_actors`` (the actor sets, not the fold number or scheme name: the same
    fold number of another scheme may hold other actors).

    Matches on the runs' ``metrics.json``: the actor sets, every ``match`` field (e.g. ``dataset="ravdess",
    backbone="paper"``), and the seed when runs of several seeds exist; the newest run wins if several remain (it is
    printed). Takes each run's selected checkpoint from its own folder, checked to carry its run id
    (:func:`run_checkpoint`). ``fold`` only words the hint when nothing matches.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"init.from_runs={runs_dir}: no such directory")
    test, val = frozenset(map(speaker_id, test_actors)), frozenset(map(speaker_id, val_actors))
    found: dict[str, list[dict]] = {"video": [], "audio": []}
    for path in sorted(runs_dir.rglob(FILENAME)):
        rec = read_record(path)
        stream = _STREAM_OF.get(rec.get("fusion"))
        if (stream and rec.get("status") == "finished" and _actors(rec.get("test_actors")) == test
                and _actors(rec.get("val_actors")) == val and rec.get("best_ckpt")
                and all(rec.get(k) == v for k, v in match.items())):
            found[stream].append({**rec, "_mtime": path.stat().st_mtime, "_path": path})
    out: dict[str, str] = {}
    for stream, recs in found.items():
        if seed is not None and len(recs) > 1:
            recs = [r for r in recs if r.get("seed") == seed] or recs
        if not recs:
            hint = f" fold={fold}" if fold is not None else ""
            raise FileNotFoundError(
                f"{runs_dir}: no finished {stream}_only run tested on actors {sorted(test)} and validated on "
                f"{sorted(val)} (train it first: python train.py fusion={stream}_only{hint})"
            )
        newest = max(recs, key=lambda r: r["_mtime"])
        if len(recs) > 1:
            print(f"init.from_runs: {len(recs)} {stream}_only runs match test actors {sorted(test)}; using the "
                  f"newest, {newest['run_dir']}")
        out[stream] = run_checkpoint(newest, newest["_path"])
    return out
