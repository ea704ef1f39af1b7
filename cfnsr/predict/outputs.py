"""What predict writes: ``predictions.csv`` (a row per window and a summary row per file) and a timeline per video.

CSV columns: ``file, window, start_s, end_s, face_frames, frames, audio_present, <one probability column per
class, named by the class>, predicted, status, reason``. ``window`` is the 0-based window number, or ``all`` on a
file's summary row. ``face_frames`` counts the sampled frames (of ``frames`` = T) where the detector found a face.
Probabilities are empty where nothing was predicted (the status and reason say why).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cfnsr.files import atomic_write

# Window and file statuses.
OK = "ok"                        # face and audio: the full model
NO_FACE = "no_face"              # no face in the window: video removed (cfnsr.data.missing), the full model
VIDEO_ONLY = "video_only"        # the file has no audio: the model's video-only path
NOT_PREDICTED = "not_predicted"  # a window nothing could be predicted for (reason says why)
ERROR = "error"                  # a file that could not be read as a video, or the model cannot use
PREDICTED = (OK, NO_FACE, VIDEO_ONLY)


def columns(class_names: Sequence[str]) -> list[str]:
    return ["file", "window", "start_s", "end_s", "face_frames", "frames", "audio_present", *class_names,
            "predicted", "status", "reason"]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{float(value):.4f}"
    return value


def write_csv(path: str | Path, rows: list[dict[str, Any]], class_names: Sequence[str]) -> Path:
    path = Path(path)
    cols = columns(class_names)
    with atomic_write(path) as tmp, tmp.open("w", newline="") as f:  # rewritten after every file of a run
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c)) for c in cols})
    return path


def summary_row(file: str, windows: list[dict[str, Any]], class_names: Sequence[str], duration: float | None,
                frames: int, audio_present: bool | None, status: str | None = None, reason: str | None = None
                ) -> dict[str, Any]:
    """The file's ``window=all`` row: the mean probabilities of its predicted windows, over the windows that had
    a face when there are any (a no_face window's prediction rests on the audio and the removed video)."""
    sampled = [w for w in windows if w.get("face_frames") is not None]
    row: dict[str, Any] = {"file": file, "window": "all", "start_s": 0.0 if duration is not None else None,
                           "end_s": round(duration, 3) if duration is not None else None,
                           "audio_present": audio_present,
                           # over all windows: faces found in how many of the frames sampled
                           "face_frames": sum(int(w["face_frames"]) for w in sampled) if sampled else None,
                           "frames": frames * len(sampled) if sampled else None}
    if status == ERROR:
        return {**row, "status": ERROR, "reason": reason}
    predicted = [w for w in windows if w["status"] in PREDICTED]
    with_face = [w for w in predicted if w["status"] != NO_FACE]
    used = with_face or predicted
    counts = {s: sum(1 for w in windows if w["status"] == s) for s in (OK, NO_FACE, VIDEO_ONLY, NOT_PREDICTED)}
    notes = [f"{n} {s}" for s, n in counts.items() if n]
    if not used:
        return {**row, "status": NOT_PREDICTED,
                "reason": reason or f"no window could be predicted ({', '.join(notes) or 'no windows'})"}
    mean = np.mean([[w[c] for c in class_names] for w in used], axis=0)
    mean = mean / mean.sum()
    excluded = "" if len(used) == len(predicted) else f", {len(predicted) - len(used)} no_face windows left out"
    text = f"mean of {len(used)} of {len(windows)} windows ({', '.join(notes)}{excluded})"
    status = status or (VIDEO_ONLY if counts[VIDEO_ONLY] else OK if with_face else NO_FACE)
    return {**row, **{c: float(p) for c, p in zip(class_names, mean, strict=True)},
            "predicted": class_names[int(np.argmax(mean))], "status": status,
            "reason": f"{reason}; {text}" if reason else text}


def unique_png_name(stem: str, taken: set[str]) -> str:
    """``timeline_<stem>.png``, with ``_2``, ``_3`` ... when two inputs share a stem."""
    name, n = f"timeline_{stem}.png", 2
    while name in taken:
        name, n = f"timeline_{stem}_{n}.png", n + 1
    taken.add(name)
    return name


def timeline_png(path: str | Path, title: str, windows: list[dict[str, Any]], class_names: Sequence[str],
                 duration: float | None = None) -> Path:
    """The probability of each class over time (at window centres), windows without a face shaded grey and
    windows without a prediction hatched. Written with matplotlib's Agg canvas (no pyplot state)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    path = Path(path)
    fig = Figure(figsize=(10, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    centres = np.array([(w["start_s"] + w["end_s"]) / 2 for w in windows], dtype=float)
    cmap = matplotlib.colormaps["tab10"]
    for i, name in enumerate(class_names):
        probs = np.array([w.get(name) if w["status"] in PREDICTED else np.nan for w in windows], dtype=float)
        ax.plot(centres, probs, marker="o", markersize=3, linewidth=1.6, color=cmap(i % 10), label=name)
    face = np.array([w["face_frames"] / w["frames"] if w.get("face_frames") is not None and w.get("frames")
                     else np.nan for w in windows], dtype=float)
    if not np.isnan(face).all():
        ax.plot(centres, face, linestyle=":", linewidth=1.2, color="black", label="face found (share of frames)")
    handles, labels = ax.get_legend_handles_labels()
    shaded = hatched = False
    for w in windows:
        if w["status"] == NO_FACE:
            ax.axvspan(w["start_s"], w["end_s"], color="0.6", alpha=0.18, linewidth=0)
            shaded = True
        elif w["status"] == NOT_PREDICTED:
            ax.axvspan(w["start_s"], w["end_s"], facecolor="none", edgecolor="tab:red", hatch="//", alpha=0.35,
                       linewidth=0)
            hatched = True
    if shaded:
        handles.append(Patch(color="0.6", alpha=0.35, label="no face (video removed)"))
        labels.append("no face (video removed)")
    if hatched:
        handles.append(Patch(facecolor="none", edgecolor="tab:red", hatch="//", label="not predicted"))
        labels.append("not predicted")
    end = duration if duration is not None else (max(w["end_s"] for w in windows) if windows else 1.0)
    ax.set_xlim(0, max(end, 1e-3))
    ax.set_ylim(0, 1.04)
    ax.set_xlabel("time (s), probabilities at window centres")
    ax.set_ylabel("probability")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path
