"""Preprocessing benchmark: clips/s of ``cfnsr.data.preprocess`` vs what the public code's ``dataset_prep.py`` did.

Clips: N synthetic 1280x720, 30 fps, 3.5 s mp4s (H.264 High, x264 ``veryfast``, CRF 20, textured moving background
plus sensor-like noise so the bitrate is a few Mbit/s like RAVDESS's, and a drawn face) with 48 kHz stereo AAC, and
an OpenFace-style CSV per clip (``frame, timestamp, confidence, x_0..x_67, y_0..y_67``). The GOP (key frame
interval) matters to any seeking reader, so it is a flag: 250 is x264's default, a seek then decodes from the first
frame of these short clips.

Paths timed on the same clips, in the same process:

* ``baseline (seek)``: the public pipeline (docs/paper-facts.md#preprocessing), one process: for each of the 30 times
  ``arange(0, D, D/30)``, ``container.seek`` to it and decode up to it (what a per-time ``get_frame`` costs when
  the reader seeks); the whole frame resized to 224x224, RGB->BGR, the tight landmark box (CSV read with
  ``np.genfromtxt``, rows ``ceil(k*N/30)``, coordinates scaled by 1/1280, 1/720) cut and resized to 224x224, one
  ``cv2.imwrite`` JPEG per frame; the audio decoded again, written as a 44.1 kHz 16-bit wav (moviepy's
  ``write_audiofile``), read back with ``librosa.load(sr=44100, offset=0.5, duration=2.45)``, MFCC, ``np.save``.
* ``baseline (sequential)``: the same, but the 30 frames are taken in one forward decode. moviepy's reader in fact
  reads forward (skipping frames) when asked for increasing times, so this row is the kinder reading of the public
  code; the seek row is what frame-by-frame seeking costs.
* ``ours, W processes``: ``preprocess_corpus(workers=W, force=True)`` with the default settings.

Columns: clips/s and s/clip from wall time; CPU s/clip (baseline: this process; ours: measured inside the worker
for each clip, all its threads) does not depend on what else the machine runs, wall time does.

Every path first runs untimed on two other clips (imports, librosa's lazy modules, our fork server), so the rows
show per-clip throughput; that one-off start-up is printed separately.

``--rerun`` measures resuming instead: the corpus gets broken files too (an empty mp4, a truncated mp4, a clip whose
landmark CSV is garbage, a notes.txt), ``preprocess_corpus`` builds a fresh cache (first run, after the same untimed
warm-up), then runs again on the unchanged corpus (re-run: entries checked, failed clips not retried, no pool, no
write), and once more with ``verify="full"`` (every entry's sha256 recomputed). It prints the seconds of each, side
by side, and the re-run / first-run ratio.

Usage: ``python bench/preprocess.py [--clips 6] [--gop 250] [--workers 2] [--keep DIR] [--rerun]``
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from cfnsr.data.cache import cached_clips
from cfnsr.data.preprocess import preprocess_corpus
from cfnsr.data.settings import PreprocessSettings

WIDTH, HEIGHT, FPS, DURATION = 1280, 720, 30, 3.5
SKIN, HAIR = (225, 190, 160), (60, 40, 20)


# ---------------------------------------------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------------------------------------------

def _face_points(cx: float, cy: float, ry: float) -> tuple[np.ndarray, np.ndarray]:
    """68 points on the face ellipse -> xs, ys (68,) pixels."""
    a = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    return cx + 0.75 * ry * np.cos(a), cy + ry * np.sin(a)


def _draw(img: np.ndarray, cx: float, cy: float, ry: float) -> None:
    c = (int(cx), int(cy))
    cv2.ellipse(img, c, (int(0.75 * ry), int(ry)), 0, 0, 360, SKIN, -1)
    cv2.ellipse(img, (c[0], c[1] - int(0.75 * ry)), (int(0.8 * ry), int(0.4 * ry)), 0, 180, 360, HAIR, -1)
    for dx in (-1, 1):
        cv2.circle(img, (c[0] + dx * int(0.32 * ry), c[1] - int(0.15 * ry)), int(0.07 * ry), (30, 20, 10), -1)
    cv2.ellipse(img, (c[0], c[1] + int(0.45 * ry)), (int(0.25 * ry), int(0.08 * ry)), 0, 0, 360, (150, 50, 50), -1)


def make_clip(root: Path, stem: str, seed: int, gop: int) -> None:
    """Write ``root/Actor_01/<stem>.mp4`` and ``root/landmarks/<stem>.csv``."""
    rng = np.random.default_rng(seed)
    n = int(DURATION * FPS)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    texture = cv2.resize(rng.normal(0, 25, (HEIGHT // 4, WIDTH // 4, 3)).astype(np.float32), (WIDTH, HEIGHT),
                         interpolation=cv2.INTER_CUBIC)
    background = np.stack([xx / WIDTH * 80 + 60, yy / HEIGHT * 60 + 80, np.full_like(xx, 150)], -1) + texture
    ry = 180 + 20 * rng.random()
    cxs = 640 + 60 * np.sin(np.arange(n) / 15 + seed)
    cys = 340 + 20 * np.cos(np.arange(n) / 20 + seed)
    mp4 = root / "Actor_01" / f"{stem}.mp4"
    mp4.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(mp4), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "20", "g": str(gop)}
        aus = out.add_stream("aac", rate=48000)
        aus.layout = "stereo"
        for i in range(n):
            img = np.roll(background, 2 * i, axis=1) + rng.normal(0, 4, (HEIGHT, WIDTH, 1)).astype(np.float32)
            img = np.clip(img, 0, 255).astype(np.uint8)
            _draw(img, cxs[i], cys[i], ry)
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        sr, total = 48000, int(DURATION * 48000)
        for t in range(0, total, 1024):
            k = min(1024, total - t)
            tone = (0.2 * np.sin(2 * np.pi * (180 + 40 * seed) * np.arange(t, t + k) / sr)
                    + 0.02 * rng.standard_normal(k)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = sr, t
            out.mux(aus.encode(frame))
        out.mux(aus.encode(None))
    header = ["frame", "timestamp", "confidence"] + [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    rows = []
    for i in range(n):
        xs, ys = _face_points(cxs[i], cys[i], ry)
        rows.append(", ".join([str(i + 1), f"{i / FPS:.3f}", "0.98"] + [f"{v:.1f}" for v in (*xs, *ys)]))
    csv = root / "landmarks" / f"{stem}.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text(", ".join(header) + "\n" + "\n".join(rows) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# Baseline: the public dataset_prep.py, rewritten with PyAV in place of moviepy
# ---------------------------------------------------------------------------------------------------------------

def _frames_by_seeking(path: Path, times: np.ndarray) -> list[np.ndarray]:
    """One seek + forward decode per time, as a reader that seeks for each get_frame(t)."""
    out = []
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        for t in times:
            container.seek(int(t / vs.time_base), stream=vs, backward=True, any_frame=False)
            chosen = None
            for frame in container.decode(vs):
                chosen = frame
                if frame.time >= t - 1e-6:
                    break
            out.append(chosen.to_ndarray(format="rgb24"))
    return out


def _frames_sequential(path: Path, times: np.ndarray) -> list[np.ndarray]:
    """One forward decode, the first frame at or after each time (moviepy's forward-reading get_frame)."""
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            while len(out) < len(times) and frame.time >= times[len(out)] - 1e-6:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == len(times):
                break
    return out


def _baseline_clip(mp4: Path, csv: Path, out_dir: Path, frame_reader: Callable) -> None:
    import librosa
    import soundfile

    with av.open(str(mp4)) as container:
        duration = float(container.streams.video[0].duration * container.streams.video[0].time_base)
    times = np.arange(0, duration, duration / 30)[:30]
    header = [h.strip() for h in csv.read_text().split("\n", 1)[0].split(",")]
    data = np.genfromtxt(csv, delimiter=",")[1:]
    xcols = [header.index(f"x_{i}") for i in range(68)]
    ycols = [header.index(f"y_{i}") for i in range(68)]
    n_rows = len(data)
    rows = [min(math.ceil(k * n_rows / 30), n_rows - 1) for k in range(30)]
    frames_dir = out_dir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for k, (t, frame) in enumerate(zip(times, frame_reader(mp4, times), strict=True)):
        small = cv2.resize(frame, (224, 224))  # moviepy target_resolution=(224, 224)
        small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        xs, ys = data[rows[k], xcols] / 1280, data[rows[k], ycols] / 720
        top, bottom, left, right = int(ys.min() * 224), int(ys.max() * 224), int(xs.min() * 224), int(xs.max() * 224)
        crop = cv2.resize(small[top:bottom, left:right], (224, 224))
        cv2.imwrite(str(frames_dir / f"frame_{t:.2f}.jpg"), crop)
    # audio: moviepy's write_audiofile (44.1 kHz, 16-bit), then librosa.load of the wav
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=44100)
    chunks = []
    with av.open(str(mp4)) as container:
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1, 2) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1, 2) for f in resampler.resample(None)]
    audio_dir = out_dir / "audios"
    audio_dir.mkdir(parents=True, exist_ok=True)
    soundfile.write(audio_dir / "audio.wav", np.concatenate(chunks), 44100, subtype="PCM_16")
    y, sr = librosa.load(audio_dir / "audio.wav", sr=44100, offset=0.5, duration=2.45)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=2048, hop_length=512)
    np.save(audio_dir / "featuresMFCC.npy", mfcc)


def run_baseline(root: Path, out: Path, stems: list[str], frame_reader: Callable) -> tuple[float, float]:
    """Returns (wall seconds for all clips, CPU seconds per clip)."""
    start, cpu = time.perf_counter(), time.process_time()
    for stem in stems:
        _baseline_clip(root / "Actor_01" / f"{stem}.mp4", root / "landmarks" / f"{stem}.csv", out / stem,
                       frame_reader)
    return time.perf_counter() - start, (time.process_time() - cpu) / len(stems)


def run_ours(root: Path, cache: Path, workers: int, expected: int) -> tuple[float, float]:
    """Returns (wall seconds for all clips, CPU seconds per clip measured inside the workers)."""
    start = time.perf_counter()
    report = preprocess_corpus(root, cache, PreprocessSettings(), workers=workers, force=True, progress=False)
    elapsed = time.perf_counter() - start
    if report["counts"]["processed"] != expected or len(cached_clips(cache)) != expected:
        raise RuntimeError(f"ours processed {report['counts']['processed']} of {expected}: {report['skipped']}")
    return elapsed, report["clip_cpu_seconds_mean"]


BROKEN = {  # stem -> how it is broken
    "01-01-08-01-01-01-01": "empty mp4",
    "01-01-08-01-01-02-01": "truncated mp4",
    "01-01-08-01-02-01-01": "garbage landmark CSV",
}


def add_broken_files(root: Path, source: Path) -> None:
    """The BROKEN clips, made from ``source`` (a good mp4), and a stray notes.txt."""
    actor = root / "Actor_01"
    stems = list(BROKEN)
    (actor / f"{stems[0]}.mp4").write_bytes(b"")
    (actor / f"{stems[1]}.mp4").write_bytes(source.read_bytes()[:100_000])
    shutil.copyfile(source, actor / f"{stems[2]}.mp4")
    (root / "landmarks" / f"{stems[2]}.csv").write_bytes(b"\xff\xfe\x00 not a csv")
    (actor / "notes.txt").write_text("session notes\n")


def run_rerun(root: Path, cache: Path, workers: int, expected: int) -> dict[str, float]:
    """Seconds of the first run (fresh cache), of a re-run on the unchanged corpus and of a verify=full re-run."""
    if cache.exists():
        shutil.rmtree(cache)
    out: dict[str, float] = {}
    t = time.perf_counter()
    first = preprocess_corpus(root, cache, PreprocessSettings(), workers=workers, progress=False)
    out["first"] = time.perf_counter() - t
    if first["counts"]["processed"] != expected or first["counts"]["skipped"] != len(BROKEN):
        raise RuntimeError(f"first run: {first['counts']}")
    report_mtime = (cache / "preprocess_report.json").stat().st_mtime_ns
    t = time.perf_counter()
    again = preprocess_corpus(root, cache, PreprocessSettings(), workers=workers, progress=False)
    out["rerun"] = time.perf_counter() - t
    if again["counts"]["processed"] or again["counts"]["not_retried"] != len(BROKEN):
        raise RuntimeError(f"re-run did work: {again['counts']}")
    if (cache / "preprocess_report.json").stat().st_mtime_ns != report_mtime:
        raise RuntimeError("the re-run rewrote preprocess_report.json")
    t = time.perf_counter()
    preprocess_corpus(root, cache, PreprocessSettings(), workers=workers, progress=False, verify="full")
    out["rerun_full"] = time.perf_counter() - t
    return out


# ---------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--gop", type=int, default=250, help="key frame interval of the generated clips")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    ap.add_argument("--rerun", action="store_true", help="time a first run against re-runs on the unchanged corpus")
    args = ap.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_preprocess_"))
    try:
        root = work / "corpus"
        stems = [f"01-01-{2 + i % 7:02d}-01-{1 + (i // 7) % 2:02d}-{1 + (i // 14) % 2:02d}-01" for i in
                 range(args.clips)]
        if len(set(stems)) != len(stems):
            raise SystemExit("--clips must be at most 28")
        t0 = time.perf_counter()
        for i, stem in enumerate(stems):
            if not (root / "Actor_01" / f"{stem}.mp4").exists():
                make_clip(root, stem, seed=i, gop=args.gop)
        # two more clips, in their own corpus, for the untimed warm-up (two so that our process pool starts)
        warm_root, warm_stems = work / "warm", ["01-01-01-01-01-01-01", "01-01-01-01-01-02-01"]
        for i, stem in enumerate(warm_stems):
            if not (warm_root / "Actor_01" / f"{stem}.mp4").exists():
                make_clip(warm_root, stem, seed=90 + i, gop=args.gop)
        print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        sizes = [os.path.getsize(root / "Actor_01" / f"{s}.mp4") for s in stems]
        print(f"{len(stems)} clips {WIDTH}x{HEIGHT} {FPS} fps {DURATION} s, GOP {args.gop}, "
              f"{np.mean(sizes) * 8 / DURATION / 1e6:.1f} Mbit/s (made in {time.perf_counter() - t0:.0f} s)")

        warm = {}
        t = time.perf_counter()
        run_baseline(warm_root, work / "warm_base", warm_stems, _frames_sequential)
        warm["baseline"] = time.perf_counter() - t
        t = time.perf_counter()
        run_ours(warm_root, work / "warm_cache", args.workers, len(warm_stems))
        warm["ours"] = time.perf_counter() - t
        print(f"untimed warm-up on 2 other clips (includes one-off start-up): baseline {warm['baseline']:.1f} s, "
              f"ours {warm['ours']:.1f} s")

        if args.rerun:
            add_broken_files(root, root / "Actor_01" / f"{stems[0]}.mp4")
            r = run_rerun(root, work / "cache_rerun", args.workers, len(stems))
            print(f"\n{len(stems)} good clips + {len(BROKEN)} broken + notes.txt, ours with {args.workers} processes")
            print(f"{'first run s':>12s} {'re-run s':>9s} {'ratio':>7s} {'re-run verify=full s':>21s} "
                  f"{'ratio':>7s}")
            print(f"{r['first']:12.2f} {r['rerun']:9.3f} {r['rerun'] / r['first']:7.3f} {r['rerun_full']:21.3f} "
                  f"{r['rerun_full'] / r['first']:7.3f}")
            return 0

        rows = [
            ("baseline (seek), 1 process", run_baseline(root, work / "base_seek", stems, _frames_by_seeking)),
            ("baseline (sequential), 1 process", run_baseline(root, work / "base_seq", stems, _frames_sequential)),
            ("ours, 1 process", run_ours(root, work / "cache1", 1, len(stems))),
            (f"ours, {args.workers} processes", run_ours(root, work / "cache", args.workers, len(stems))),
        ]
        n = len(stems)
        ours = rows[-1][1][0]
        print(f"\n{'path':36s} {'clips/s':>8s} {'s/clip':>8s} {'CPU s/clip':>11s} {'ours is x faster':>17s}")
        for label, (seconds, cpu) in rows:
            print(f"{label:36s} {n / seconds:8.2f} {seconds / n:8.2f} {cpu:11.2f} {seconds / ours:17.1f}")
        print(f"\n1440 RAVDESS clips at these rates: baseline (seek) {rows[0][1][0] / n * 1440 / 60:.0f} min, "
              f"baseline (sequential) {rows[1][1][0] / n * 1440 / 60:.0f} min, ours {ours / n * 1440 / 60:.1f} min")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes' work "
              f"slows the parallel row most)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
