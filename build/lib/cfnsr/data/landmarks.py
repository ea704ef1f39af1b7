"""OpenFace landmark CSVs (RAVDESS FacialTracking): locate, read by header name, repair failed rows.

The public code sliced fixed column numbers (297:365, 365:433) of the 712-column OpenFace 2.1.0 layout, which breaks
silently on any other OpenFace version (``face_id``/``success`` columns shift everything). Here columns are found by
their header names, whatever their order and whatever spaces follow the commas.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfnsr.data.ravdess import RavdessName

N_POINTS = 68
X_COLUMNS = tuple(f"x_{i}" for i in range(N_POINTS))
Y_COLUMNS = tuple(f"y_{i}" for i in range(N_POINTS))


class LandmarkError(ValueError):
    """A landmark CSV that cannot be used (unreadable, missing columns, no row with a tracked face)."""


@dataclass(frozen=True)
class Landmarks:
    """The 68 2-D landmarks of every CSV row, failed rows already replaced by interpolation.

    xs, ys:        float32 (N, 68) pixels of the original frame
    timestamps:    float64 (N,) seconds as written by OpenFace, or None when the CSV has no usable timestamp column
    tracked:       bool (N,) True where OpenFace tracked the face (the row was not interpolated)
    frame_numbers: float64 (N,) the ``frame`` column (OpenFace counts from 1), or None when absent or unusable
    """

    xs: np.ndarray
    ys: np.ndarray
    timestamps: np.ndarray | None
    tracked: np.ndarray
    frame_numbers: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return len(self.xs)

    @property
    def n_interpolated(self) -> int:
        return int((~self.tracked).sum())

    def extents(self, rows: np.ndarray) -> np.ndarray:
        """Bounding box of the 68 points for the given row indices -> float32 (len(rows), 4) [x0, y0, x1, y1]."""
        xs, ys = self.xs[rows], self.ys[rows]
        return np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1).astype(np.float32)


def find_landmark_csv(root: str | Path, name: RavdessName) -> Path | None:
    """The CSV of a clip, looked for in ``<root>/landmarks/<stem>.csv``, ``<root>/landmarks/Actor_XX/<stem>.csv``
    and ``<root>/Actor_XX/<stem>.csv``.

    The video-only take (modality 02) is the same recording as the full-AV one with the sound removed, so when the
    FacialTracking files are named after it, its CSV is used for the 01 clip too (tried after the exact stem).
    """
    root = Path(root)
    actor_dir = f"Actor_{name.actor:02d}"
    stems = [name.stem]
    if name.modality == 1:
        stems.append("02" + name.stem[2:])
    for stem in stems:
        for candidate in (root / "landmarks" / f"{stem}.csv", root / "landmarks" / actor_dir / f"{stem}.csv",
                          root / actor_dir / f"{stem}.csv"):
            if candidate.is_file():
                return candidate
    return None


def _read_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", errors="strict") as fh:
        line = fh.readline()
    if not line.strip():
        raise LandmarkError(f"{path.name}: empty file, no header row")
    return [col.strip() for col in line.rstrip("\r\n").split(",")]


def _read_columns(path: Path, usecols: list[int]) -> np.ndarray:
    """The numeric table for ``usecols`` -> float64 (N, len(usecols)); empty fields become NaN."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported by the caller
            return np.loadtxt(path, delimiter=",", skiprows=1, usecols=usecols, ndmin=2, dtype=np.float64,
                              encoding="utf-8-sig")
    except ValueError:
        pass  # empty fields or text: retry with the slower reader that maps them to NaN
    data = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=usecols, dtype=np.float64,
                         encoding="utf-8-sig", invalid_raise=True)
    return np.atleast_2d(data)


def read_openface_csv(path: str | Path) -> Landmarks:
    """Read an OpenFace CSV and interpolate the rows where tracking failed.

    A row is bad when ``confidence`` is 0 (or less), ``success`` is 0, or any landmark coordinate is NaN. Bad rows
    get linear interpolation between the neighbouring good rows (the nearest good row at either end).
    Raises ``LandmarkError`` naming the file if it cannot be read, lacks x_0..x_67 / y_0..y_67, has no rows, or
    has no good row at all.
    """
    path = Path(path)
    try:
        header = _read_header(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise LandmarkError(f"{path.name}: cannot read ({exc})") from exc
    index = {col: i for i, col in enumerate(header)}
    missing = [col for col in X_COLUMNS + Y_COLUMNS if col not in index]
    if missing:
        shown = ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else "")
        raise LandmarkError(f"{path.name}: no landmark columns {shown} in the header (not an OpenFace 2-D "
                            f"landmark CSV?)")
    optional = [col for col in ("confidence", "success", "timestamp", "frame") if col in index]
    wanted = list(X_COLUMNS + Y_COLUMNS) + optional
    try:
        table = _read_columns(path, [index[col] for col in wanted])
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise LandmarkError(f"{path.name}: cannot parse ({exc})") from exc
    if table.size == 0 or table.shape[0] == 0:
        raise LandmarkError(f"{path.name}: header only, no data rows")
    cols = {col: table[:, i] for i, col in enumerate(wanted)}
    xs = table[:, :N_POINTS]
    ys = table[:, N_POINTS:2 * N_POINTS]

    good = ~(np.isnan(xs).any(1) | np.isnan(ys).any(1))
    if "confidence" in cols:
        good &= np.nan_to_num(cols["confidence"], nan=0.0) > 0
    if "success" in cols:
        good &= np.nan_to_num(cols["success"], nan=0.0) != 0
    if not good.any():
        raise LandmarkError(f"{path.name}: face tracking failed on all {len(good)} rows")
    xs, ys = _interpolate_bad_rows(xs, good), _interpolate_bad_rows(ys, good)

    timestamps = cols.get("timestamp")
    if timestamps is not None and (np.isnan(timestamps).any() or np.any(np.diff(timestamps) < 0)):
        timestamps = None  # unusable for matching by time: fall back to row index
    frame_numbers = cols.get("frame")
    if frame_numbers is not None and (np.isnan(frame_numbers).any() or np.any(np.diff(frame_numbers) <= 0)):
        frame_numbers = None
    return Landmarks(xs=xs.astype(np.float32), ys=ys.astype(np.float32), timestamps=timestamps, tracked=good,
                     frame_numbers=frame_numbers)


def _interpolate_bad_rows(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """values float64 (N, P); rows where ``good`` is False are replaced column by column by np.interp over the row
    index, which holds the nearest good value beyond the first/last good row."""
    if good.all():
        return values
    rows = np.arange(len(values))
    out = values.copy()
    for p in range(values.shape[1]):
        out[~good, p] = np.interp(rows[~good], rows[good], values[good, p])
    return out


def rows_for_times(landmarks: Landmarks, times: np.ndarray, duration: float) -> np.ndarray:
    """CSV row for each video time -> int64 (len(times),).

    With timestamps: the row nearest in time (measured from the first row). Without: row ``round(t * N / D)``,
    the paper's ``k * N / T`` for t = k * D / T. Clipped to [0, N-1].
    """
    n = landmarks.n_rows
    times = np.asarray(times, dtype=np.float64)
    if landmarks.timestamps is not None and n > 1:
        ts = landmarks.timestamps - landmarks.timestamps[0]
        right = np.clip(np.searchsorted(ts, times), 1, n - 1)
        left = right - 1
        rows = np.where(times - ts[left] <= ts[right] - times, left, right)
    else:
        rows = np.rint(times * n / max(duration, 1e-9)).astype(np.int64)
    return np.clip(rows, 0, n - 1).astype(np.int64)


def coverage_problem(landmarks: Landmarks, frame_times: np.ndarray, fps: float, duration: float,
                     video_frames: int) -> str | None:
    """Why the CSV does not cover the clip's sampled frames, or None when it does.

    frame_times:  times (s, from the first video frame) of the frames that will be cropped
    fps:          frame rate of the video (0 if unknown: the period is then duration / video_frames)
    video_frames: frames in the video (duration x fps, or the decoded count)

    With timestamps, the last row must reach the last needed time minus 1.5 frame periods; else, with a ``frame``
    column, the last frame number must reach the last needed frame minus 1.5; else the row count must be within 10 %
    (or 2 rows) of the video's frame count, since rows are then mapped to times proportionally.
    """
    n = landmarks.n_rows
    period = 1.0 / fps if fps > 0 else duration / max(video_frames, 1)
    last_needed = float(np.max(frame_times)) if len(frame_times) else 0.0
    what = f"{n} rows for {video_frames} frames"
    if landmarks.timestamps is not None:
        span = float(landmarks.timestamps[-1] - landmarks.timestamps[0])
        if span < last_needed - 1.5 * period:
            return (f"{what}: its timestamps end at {span:.2f} s but frames up to {last_needed:.2f} s are cropped "
                    f"(CSV cut short, or of another video?)")
        return None
    if landmarks.frame_numbers is not None:
        span = float(landmarks.frame_numbers[-1] - landmarks.frame_numbers[0])
        needed = last_needed / period
        if span < needed - 1.5:
            return (f"{what}: its frame numbers end at frame {landmarks.frame_numbers[-1]:.0f} but frames up to "
                    f"{needed + landmarks.frame_numbers[0]:.0f} are cropped (CSV cut short, or of another video?)")
        return None
    if abs(n - video_frames) > max(2, 0.1 * video_frames):
        return f"{what} and no timestamp or frame column: rows cannot be matched to frames"
    return None
