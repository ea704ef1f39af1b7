"""cfnsr.data.landmarks: OpenFace CSVs read by header name, failed rows interpolated, CSV lookup, row choice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from media_factory import write_openface_csv

from cfnsr.data.landmarks import (
    LandmarkError,
    coverage_problem,
    find_landmark_csv,
    read_openface_csv,
    rows_for_times,
)
from cfnsr.data.ravdess import parse_name


def _points(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Distinct, row-dependent landmarks (n, 68) so a column mix-up or row shift shows."""
    rows, cols = np.arange(n)[:, None], np.arange(68)[None]
    return 100 + 2.0 * rows + cols, 50 + 3.0 * rows + 0.5 * cols


@pytest.mark.parametrize("face_id,success,spaces,shuffle",
                         list(itertools.product([True, False], [True, False], [True, False], [None, 7])))
def test_columns_found_by_name_whatever_the_layout(tmp_path, face_id, success, spaces, shuffle):
    xs, ys = _points()
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=30, face_id=face_id, success=success, spaces=spaces, shuffle=shuffle)
    lm = read_openface_csv(path)
    np.testing.assert_allclose(lm.xs, xs, atol=1e-3)
    np.testing.assert_allclose(lm.ys, ys, atol=1e-3)
    np.testing.assert_allclose(lm.timestamps, np.arange(12) / 30, atol=1e-3)
    assert lm.tracked.all() and lm.n_interpolated == 0


def test_failed_rows_are_interpolated_from_good_neighbours(tmp_path):
    xs, ys = _points()
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=30, failed_rows=(0, 4, 5, 11))
    lm = read_openface_csv(path)
    assert lm.tracked.tolist() == [i not in (0, 4, 5, 11) for i in range(12)]
    # rows 4, 5 lie between good rows 3 and 6, and the points move linearly with the row: exact recovery
    np.testing.assert_allclose(lm.xs[1:11], xs[1:11], atol=1e-3)
    np.testing.assert_allclose(lm.ys[4:6], ys[4:6], atol=1e-3)
    # the ends take the nearest good row
    np.testing.assert_allclose(lm.xs[0], xs[1], atol=1e-3)
    np.testing.assert_allclose(lm.xs[11], xs[10], atol=1e-3)


def test_confidence_zero_alone_marks_a_row_bad_when_there_is_no_success_column(tmp_path):
    xs, ys = _points()
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=30, success=False, failed_rows=(3,))
    lm = read_openface_csv(path)
    assert not lm.tracked[3]
    np.testing.assert_allclose(lm.xs[3], xs[3], atol=1e-3)


def test_empty_and_nan_fields_are_failed_rows(tmp_path):
    xs, ys = _points()
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=30, spaces=False)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("x_5")] = ""
    lines[3] = ",".join(row)
    row = lines[6].split(",")
    row[header.index("y_0")] = "nan"
    lines[6] = ",".join(row)
    path.write_text("\n".join(lines) + "\n")
    lm = read_openface_csv(path)
    assert lm.tracked.tolist().count(False) == 2 and not lm.tracked[2] and not lm.tracked[5]
    np.testing.assert_allclose(lm.xs[2], xs[2], atol=1e-3)


def test_all_rows_failed_is_an_error(tmp_path):
    xs, ys = _points(4)
    path = tmp_path / "lost.csv"
    write_openface_csv(path, xs, ys, fps=30, failed_rows=(0, 1, 2, 3))
    with pytest.raises(LandmarkError, match="lost.csv: face tracking failed on all 4 rows"):
        read_openface_csv(path)


@pytest.mark.parametrize("content,message", [
    ("", "empty file"),
    ("frame, timestamp, confidence, x_0, y_0\n1, 0, 0.9, 1, 2\n", "no landmark columns x_1"),
    (None, "header only"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary", "cannot read"),
    ("ragged", "cannot parse"),
])
def test_unreadable_csvs(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    xs, ys = _points(3)
    write_openface_csv(path, xs, ys, fps=30)
    if content is None:
        path.write_text(path.read_text().splitlines()[0] + "\n")
    elif content == "ragged":
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:2] + [lines[2].rsplit(",", 20)[0]]) + "\n")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(LandmarkError, match=f"bad.csv: .*{message}"):
        read_openface_csv(path)


@pytest.mark.parametrize("layout", ["landmarks/{stem}.csv", "landmarks/Actor_24/{stem}.csv", "Actor_24/{stem}.csv",
                                    "landmarks/02-01-05-02-01-02-24.csv"])
def test_find_landmark_csv_layouts(tmp_path, layout):
    name = parse_name("01-01-05-02-01-02-24.mp4")
    assert find_landmark_csv(tmp_path, name) is None
    path = tmp_path / layout.format(stem=name.stem)
    path.parent.mkdir(parents=True)
    path.write_text("x")
    assert find_landmark_csv(tmp_path, name) == path


def test_rows_for_times_by_timestamp_and_by_index(tmp_path):
    xs, ys = _points(30)
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=10)
    lm = read_openface_csv(path)
    assert rows_for_times(lm, np.array([0.0, 0.14, 0.16, 1.0, 9.0]), 3.0).tolist() == [0, 1, 2, 10, 29]
    no_time = type(lm)(lm.xs, lm.ys, None, lm.tracked)
    # k * N / T for t = k * D / T: 30 rows over 3 s
    assert rows_for_times(no_time, np.array([0.0, 1.5, 2.99]), 3.0).tolist() == [0, 15, 29]


def test_extents_are_the_landmark_bounding_box(tmp_path):
    xs, ys = _points(3)
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=10)
    ext = read_openface_csv(path).extents(np.array([2, 0]))
    np.testing.assert_allclose(ext, [[104, 56, 171, 89.5], [100, 50, 167, 83.5]], atol=1e-3)


def test_frame_column_is_read(tmp_path):
    xs, ys = _points(5)
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=10)
    assert read_openface_csv(path).frame_numbers.tolist() == [1, 2, 3, 4, 5]


def _clip_times(n_frames: int, fps: float, count: int = 8) -> np.ndarray:
    """The paper's k * D / T sampling of a clip of n_frames at fps."""
    return np.arange(count) * (n_frames / fps / count)


def test_coverage_by_timestamps(tmp_path):
    xs, ys = _points(31)
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=10)
    full = read_openface_csv(path)
    times = _clip_times(31, 10)
    assert coverage_problem(full, times, 10, 3.1, 31) is None
    short = type(full)(full.xs[:3], full.ys[:3], full.timestamps[:3], full.tracked[:3], full.frame_numbers[:3])
    problem = coverage_problem(short, times, 10, 3.1, 31)
    assert problem is not None and "3 rows for 31 frames" in problem and "0.20 s" in problem
    # one frame period short of the last needed time is tolerated (OpenFace may drop the last frame)
    end = type(full)(full.xs[:-4], full.ys[:-4], full.timestamps[:-4], full.tracked[:-4], None)
    assert times[-1] - end.timestamps[-1] < 0.15 and coverage_problem(end, times, 10, 3.1, 31) is None


def test_coverage_by_frame_numbers_and_by_row_count(tmp_path):
    xs, ys = _points(31)
    path = tmp_path / "a.csv"
    write_openface_csv(path, xs, ys, fps=10)
    lm = read_openface_csv(path)
    times = _clip_times(31, 10)
    frames_only = type(lm)(lm.xs, lm.ys, None, lm.tracked, lm.frame_numbers)
    assert coverage_problem(frames_only, times, 10, 3.1, 31) is None
    cut = type(lm)(lm.xs[:3], lm.ys[:3], None, lm.tracked[:3], lm.frame_numbers[:3])
    assert "3 rows for 31 frames" in coverage_problem(cut, times, 10, 3.1, 31)

    def rows(n: int):
        return type(lm)(xs=np.zeros((n, 68), np.float32), ys=np.zeros((n, 68), np.float32), timestamps=None,
                        tracked=np.ones(n, bool))

    # without timestamps or frame numbers rows map to times proportionally: the count must match the video's
    assert coverage_problem(rows(31), times, 10, 3.1, 31) is None
    assert coverage_problem(rows(29), times, 10, 3.1, 31) is None  # within 2 rows
    assert coverage_problem(rows(100), _clip_times(105, 30), 30, 3.5, 105) is None  # within 10 %
    assert "3 rows for 31 frames" in coverage_problem(rows(3), times, 10, 3.1, 31)
    assert "62 rows for 31 frames" in coverage_problem(rows(62), times, 10, 3.1, 31)
