"""Find stage-1 (unimodal) checkpoints in a directory of finished runs, for two-stage training."""

from __future__ import annotations

from pathlib import Path

from cfnsr.runs.record import FILENAME, read_record

_STREAM_OF = {"video_only": "video", "audio_only": "audio"}


def find_unimodal_checkpoints(
    runs_dir: str | Path, fold: int, seed: int | None = None, **match: str
) -> dict[str, str]:
    """``{"video": ckpt, "audio": ckpt}`` of the finished video_only/audio_only runs of ``fold`` under ``runs_dir``.

    Matches on the runs' ``metrics.json``: fold, every ``match`` field (e.g. ``dataset="ravdess",
    backbone="paper"``), and the seed when runs of several seeds exist; the newest run wins if several remain
    (it is printed). Takes each run's selected checkpoint (``best_ckpt``).
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"model.init.from_runs={runs_dir}: no such directory")
    found: dict[str, list[dict]] = {"video": [], "audio": []}
    for path in sorted(runs_dir.rglob(FILENAME)):
        rec = read_record(path)
        stream = _STREAM_OF.get(rec.get("fusion"))
        if (stream and rec.get("status") == "finished" and rec.get("fold") == fold and rec.get("best_ckpt")
                and all(rec.get(k) == v for k, v in match.items())):
            found[stream].append({**rec, "_mtime": path.stat().st_mtime})
    out: dict[str, str] = {}
    for stream, recs in found.items():
        if seed is not None and len(recs) > 1:
            recs = [r for r in recs if r.get("seed") == seed] or recs
        if not recs:
            raise FileNotFoundError(
                f"{runs_dir}: no finished {stream}_only run for fold {fold} (train it first: "
                f"python train.py fusion={stream}_only fold={fold})"
            )
        newest = max(recs, key=lambda r: r["_mtime"])
        if len(recs) > 1:
            print(f"model.init.from_runs: {len(recs)} {stream}_only runs match fold {fold}; using the newest, "
                  f"{newest['run_dir']}")
        out[stream] = newest["best_ckpt"]
    return out
