"""A synthetic corpus in CREMA-D's layout, for tests and demos without the data (``cfnsr.data.cremad``).

Written with PyAV, as the real release is laid out::

    <root>/VideoFlash/<actor>_<sentence>_<emotion>_<level>.flv   FLV: Sorenson H.263 (flv1) video + MP3 audio
    <root>/AudioWAV/<same stem>.wav                              16 kHz mono PCM, the same voice
    <root>/processedResults/summaryTable.csv                     crowd votes in the release's columns

Faces and voices come from the synthetic RAVDESS-format renderers (``cfnsr.data.synthetic``): each CREMA-D emotion
is drawn with the cues of the RAVDESS emotion code of the same name (ANG -> 05, DIS -> 07, FEA -> 06, HAP -> 03,
NEU -> 01, SAD -> 04). Some clips are cut short (``short_every``) so that the audio-window padding is exercised;
the votes agree with the acted emotion except for every ``disagree_every``-th clip (the next emotion) and every
``tie_every``-th clip (a tie, ``A:N`` style). Output is a pure function of the arguments.

CLI: ``python -m cfnsr.data.synthetic_cremad <root> [--actors 1001 1002 ...]``
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from cfnsr.data.cremad import AUDIO_DIR, EMOTION_CODES, SENTENCES, SUMMARY_FILE, VIDEO_DIR, VOTE_LETTERS
from cfnsr.data.ravdess import RavdessName
from cfnsr.data.synthetic import make_config, render_audio, render_video
from cfnsr.files import atomic_write, write_text_atomic

# RAVDESS emotion code (1..8) whose synthetic cues draw each CREMA-D emotion, in EMOTION_CODES order.
RAVDESS_CODE = (5, 7, 6, 3, 1, 4)
WAV_RATE = 16000
FLV_AUDIO_RATE = 22050  # a rate FLV's MP3 audio supports (5.5, 11, 22, 44 kHz)


def clip_stems(actors: Sequence[int], sentences: Sequence[str], levels: Sequence[str]) -> list[str]:
    """Every clip stem, in (actor, sentence, emotion, level) order; NEU only with level XX, as in CREMA-D."""
    out = []
    for a in actors:
        for s in sentences:
            for e in EMOTION_CODES:
                for lv in (("XX",) if e == "NEU" else levels):
                    out.append(f"{a}_{s}_{e}_{lv}")
    return out


def _write_flv(path: Path, frames: np.ndarray, audio: np.ndarray, fps: int) -> None:
    """frames uint8 (T, H, W, 3) RGB + audio float32 (N,) at FLV_AUDIO_RATE -> FLV (flv1 video, MP3 mono)."""
    with av.open(str(path), "w", format="flv") as container:
        video = container.add_stream("flv", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.codec_context.thread_count = 1
        sound = container.add_stream("mp3", rate=FLV_AUDIO_RATE)
        sound.layout = "mono"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        chunk = 1152  # an MP3 frame
        for s in range(0, len(audio), chunk):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, s:s + chunk]), format="fltp",
                                               layout="mono")
            frame.sample_rate = FLV_AUDIO_RATE
            frame.pts = s
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))


def _write_wav(path: Path, audio: np.ndarray) -> None:
    """audio float32 (N,) at WAV_RATE -> 16-bit PCM mono WAV."""
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=WAV_RATE)
        stream.layout = "mono"
        pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = WAV_RATE
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Linear-interpolation resampling (the synthetic voice has no energy near either Nyquist frequency)."""
    n_out = int(round(len(audio) * rate_out / rate_in))
    t = np.arange(n_out) * (rate_in / rate_out)
    return np.interp(t, np.arange(len(audio)), audio).astype(np.float32)


def summary_table(stems: Sequence[str], disagree_every: int, tie_every: int) -> str:
    """summaryTable.csv text: R's write.csv layout (an unnamed row-number column first), votes as letters."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["", "FileName", "VoiceVote", "VoiceLevel", "FaceVote", "FaceLevel", "MultiModalVote",
                "MultiModalLevel"])
    for i, stem in enumerate(stems, start=1):
        acted = EMOTION_CODES.index(stem.split("_")[2])
        letter = VOTE_LETTERS[acted]
        voice = face = multi = letter
        if tie_every and i % tie_every == 0:
            voice = f"{letter}:{VOTE_LETTERS[(acted + 1) % len(VOTE_LETTERS)]}"
        elif disagree_every and i % disagree_every == 0:
            voice = VOTE_LETTERS[(acted + 1) % len(VOTE_LETTERS)]
        w.writerow([i, stem, voice, "50", face, "60", multi, "70"])
    return buf.getvalue()


def generate_cremad(root: str | Path, actors: Sequence[int] = (1001, 1002), sentences: Sequence[str] = ("DFA",),
                    levels: Sequence[str] = ("XX",), seed: int = 0, width: int = 128, height: int = 72,
                    fps: int = 10, duration: float = 3.0, short_every: int = 5, short_duration: float = 2.0,
                    disagree_every: int = 7, tie_every: int = 11) -> list[str]:
    """Write the corpus under ``root`` (clips that exist are kept: resumable); returns the clip stems.

    short_every: every n-th clip is cut to ``short_duration`` seconds (video and audio), shorter than the default
    CREMA-D audio window (2.45 s), so preprocessing pads it (0: none).
    """
    unknown = [s for s in sentences if s not in SENTENCES]
    if unknown:
        raise ValueError(f"sentences {unknown} are not CREMA-D sentence codes {SENTENCES}")
    root = Path(root)
    cfg = make_config(actors=1, seed=seed, width=width, height=height, fps=fps, duration=duration,
                      sample_rate=FLV_AUDIO_RATE)
    stems = clip_stems(actors, sentences, levels)
    for i, stem in enumerate(stems, start=1):
        flv, wav = root / VIDEO_DIR / f"{stem}.flv", root / AUDIO_DIR / f"{stem}.wav"
        if flv.exists() and wav.exists():
            continue
        actor, sentence, emotion, level = stem.split("_")
        code = RAVDESS_CODE[EMOTION_CODES.index(emotion)]
        # the RAVDESS-format renderers take a RAVDESS name: the emotion's cues, the actor's look and voice
        name = RavdessName(1, 1, code, 2 if level == "HI" and code != 1 else 1,
                           SENTENCES.index(sentence) % 2 + 1, 1, int(actor) - 1000)
        frames = render_video(name, cfg)[0]
        audio = render_audio(name, cfg)[0]
        if short_every and i % short_every == 0:
            frames = frames[:max(1, int(short_duration * fps))]
            audio = audio[:int(short_duration * FLV_AUDIO_RATE)]
        for folder in (flv.parent, wav.parent):
            folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(flv) as tmp:
            _write_flv(tmp, frames, audio, fps)
        with atomic_write(wav) as tmp:
            _write_wav(tmp, _resample(audio, FLV_AUDIO_RATE, WAV_RATE))
    table = root / SUMMARY_FILE
    table.parent.mkdir(parents=True, exist_ok=True)
    text = summary_table(stems, disagree_every, tie_every)
    if not table.exists() or table.read_text(encoding="utf-8") != text:
        write_text_atomic(table, text)
    return stems


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write a synthetic CREMA-D-format corpus (FLV + WAV + ratings).")
    p.add_argument("root")
    p.add_argument("--actors", type=int, nargs="+", default=[1001, 1002])
    p.add_argument("--sentences", nargs="+", default=["DFA"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    stems = generate_cremad(args.root, actors=args.actors, sentences=args.sentences, seed=args.seed)
    print(f"{len(stems)} clips in {args.root}")


if __name__ == "__main__":
    main()
