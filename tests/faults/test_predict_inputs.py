"""predict.py on hostile input: a timeline with long gaps (and a 10 h claimed timeline in a tiny file), folders with
symbolic-link loops, names with non-ASCII characters and newlines, a file whose decode kills its process, 7.1 audio."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from media_factory import write_clip  # noqa: E402
from test_audio_layouts import _write as write_layout  # noqa: E402
from tests_helpers import CONF_DIR  # noqa: E402

from cfnsr.predict.decode_check import KILL_CHECK_ENV  # noqa: E402
from cfnsr.predict.probe import probe  # noqa: E402
from cfnsr.predict.run import expand_inputs, predict  # noqa: E402
from cfnsr.predict.windows import WindowStream, plan_windows  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def gap_video(path: Path, times: list[float]) -> Path:
    """64x48 MPEG-4 frames at ``times`` (s; a millisecond time base) and 2 s of silent 16 kHz audio, in Matroska."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.time_base = Fraction(1, 1000)
        a = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        for t in times:
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100, np.uint8), format="rgb24")
            f.pts, f.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        for i in range(0, 32000, 1600):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
            fr.sample_rate, fr.pts = 16000, i
            for p in a.encode(fr):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return path


_STREAM_IN_CHILD = textwrap.dedent("""
    import sys, time
    from cfnsr.predict.probe import probe
    from cfnsr.predict.windows import WindowStream, plan_windows
    info = probe(sys.argv[1])
    windows = plan_windows(info.duration, 3.0, 3.0, 8, 0.5, 2.45)
    start = time.perf_counter()
    served = [raw.frames is not None for raw in WindowStream(sys.argv[1], windows, 16000, 39200)]
    print(len(windows), sum(served), time.perf_counter() - start)
""")


def test_windows_inside_a_gap_are_marked_and_a_10_hour_claim_costs_seconds(tmp_path: Path):
    # 2 s of frames, then two frames at 10 h: the header says 10 h, the file holds 52 frames (~70 KB)
    path = gap_video(tmp_path / "ten_hours.mkv", [k / 25 for k in range(50)] + [36000 + k / 25 for k in range(2)])
    assert probe(path).duration > 35999
    # in a child with a time limit: before, this stream alone ran for > 4 minutes (and predict > 17)
    done = subprocess.run([sys.executable, "-c", _STREAM_IN_CHILD, str(path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    n, with_frames, seconds = done.stdout.split()
    assert int(n) == 12000
    # only the windows with a frame inside: [0, 3) and the last one (before: all 12000 got the frames at 2 s / 10 h)
    assert int(with_frames) == 2
    assert float(seconds) < 30


def test_a_gap_window_says_where_the_frames_are(tmp_path: Path):
    path = gap_video(tmp_path / "gap.mkv", [k / 25 for k in range(75)] + [60 + k / 25 for k in range(75)])
    info = probe(path)
    windows = plan_windows(info.duration, 3.0, 3.0, 8, 0.5, 2.45)
    raws = list(WindowStream(path, windows, 16000, 39200))
    assert raws[0].frames is not None and raws[-1].frames is not None
    gap = [r for r in raws if r.window.end < 60]
    assert len(gap) == 19 and all(r.frames is None for r in gap[1:])  # [57, 60] holds the frame at 60 s
    assert "no video frame inside this window (3.00-6.00 s)" in gap[1].problem
    assert "none from 2.96 s to 60.00 s" in gap[1].problem


_EXPAND_IN_CHILD = "import sys; from cfnsr.predict.run import expand_inputs; print(len(expand_inputs(sys.argv[1])))"


@pytest.mark.parametrize("form", ["folder", "glob"])
def test_a_symlink_loop_is_not_followed_and_files_are_listed_once(tmp_path: Path, form: str):
    root = tmp_path / "videos"
    (root / "a" / "b").mkdir(parents=True)
    for name in ("one.mp4", "a/two.mp4", "a/b/three.mp4"):
        (root / name).write_bytes(b"x")
    (root / "a" / "b" / "up").symlink_to("../..")  # a loop: videos/a/b/up == videos
    (root / "a" / "again").symlink_to("b")  # the same folder twice
    (root / "a" / "b" / "back").symlink_to("..")  # and a second loop: with two, the paths multiply
    (root / "same.mp4").symlink_to("one.mp4")  # one file under two names
    spec = str(root) if form == "folder" else f"{root}/**/*.mp4"
    # before: never finished (2^40 paths through the two loops); in a child so a hang fails instead of blocking
    done = subprocess.run([sys.executable, "-c", _EXPAND_IN_CHILD, spec], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == 3
    files = expand_inputs(spec)
    assert [f.relative_to(root).as_posix() for f in files] == ["a/b/three.mp4", "a/two.mp4", "one.mp4"]


def test_a_name_with_non_ascii_and_newline_passes_with_the_documented_quoting(tmp_path: Path):
    """docs/predict.md: put the value in single quotes inside the shell's quotes, ``"input='...'"``."""
    path = tmp_path / "entrevue été\n日本.mp4"
    path.write_bytes(b"x")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=[f"input='{path}'", "ckpt_path=x"])
    assert cfg.input == str(path)
    assert expand_inputs(cfg.input) == [path]
    glob = compose_glob = f"input='{tmp_path}/*été*'"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=[compose_glob, "ckpt_path=x"])
    assert expand_inputs(cfg.input) == [path], glob


# --------------------------------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_a_folder_run_survives_a_file_that_kills_its_decoder(late_ckpt: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "a_good.mp4", width=160, height=120, fps=20, duration=3.5, sample_rate=16000)
    write_clip(folder / "b_crash.mp4", width=160, height=120, fps=20, duration=3.5, sample_rate=16000)
    write_layout(folder / "c_seven_one.mp4", "aac", "7.1", 3.5, 1024)
    gap_video(folder / "d_ten_hours.mkv", [k / 25 for k in range(50)] + [36000 + k / 25 for k in range(2)])
    monkeypatch.setenv(KILL_CHECK_ENV, "b_crash.mp4")
    out = tmp_path / "out"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=[f"paths.output_dir={out}", "predict.progress=false",
                                            f"ckpt_path={late_ckpt}", f"input={folder}"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    start = time.perf_counter()
    predict(cfg)
    seconds = time.perf_counter() - start
    with (out / "predictions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    summary = {Path(r["file"]).name: r for r in rows if r["window"] == "all"}
    assert set(summary) == {"a_good.mp4", "b_crash.mp4", "c_seven_one.mp4", "d_ten_hours.mkv"}
    # before: the whole run died (the 7.1 file: SIGSEGV) and predictions.csv was never written
    assert summary["b_crash.mp4"]["status"] == "error" and "killed by SIGKILL" in summary["b_crash.mp4"]["reason"]
    assert summary["a_good.mp4"]["status"] in ("ok", "no_face")
    assert summary["c_seven_one.mp4"]["status"] in ("ok", "no_face")
    ten = [r for r in rows if Path(r["file"]).name == "d_ten_hours.mkv" and r["window"] != "all"]
    assert len(ten) == 12000
    marked = [r for r in ten if r["status"] == "not_predicted" and "no video frame inside" in r["reason"]]
    assert len(marked) == 11998
    assert seconds < 240  # before: > 17 minutes for the 10 h file alone
