"""Find stage-1 (unimodal) checkpoints in a directory of finished runs, for two-stage training."""

from __future__ import annotations

from pathlib import Path

from cfnsr.run_record import FILENAME, read_record

_STREAM_OF = {"video_only": "video", "audio_only": "audio"}


def find_unimodal_checkpoints(runs_dir: str | Path, fold: int, seed: int | None = None) -> dict[str, str]:
    """``{"video": ckpt, "audio": ckpt}`` of the finished video_only/audio_only runs of ``fold`` under ``runs_dir``.

    Matches on the runs' ``metrics.json`` (fold, seed if several seeds exist) and takes each run's selected
    checkpoint (``best_ckpt``). Raises if a stream has no run or several candidates.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"model.init.from_runs={runs_dir}: no such directory")
    found: dict[str, list[dict]] = {"video": [], "audio": []}
    for path in sorted(runs_dir.rglob(FILENAME)):
        rec = read_record(path)
        stream = _STREAM_OF.get(rec.get("fusion"))
        if stream and rec.get("status") == "finished" and rec.get("fold") == fold and rec.get("best_ckpt"):
            found[stream].append(rec)
    out: dict[str, str] = {}
    for stream, recs in found.items():
        if seed is not None and len(recs) > 1:
            recs = [r for r in recs if r.get("seed") == seed] or recs
        if len(recs) > 1:
            dirs = ", ".join(r["run_dir"] for r in recs)
            raise RuntimeError(f"{runs_dir}: several finished {stream}-only runs for fold {fold}: {dirs}")
        if not recs:
            raise FileNotFoundError(
                f"{runs_dir}: no finished {stream}_only run for fold {fold} (train it first: "
                f"python train.py fusion={stream}_only fold={fold})"
            )
        out[stream] = recs[0]["best_ckpt"]
    return out
