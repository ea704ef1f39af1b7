"""Audio as real files carry it: timestamps that repeat (AVI + AC3 with a wrong sample size in its header) and 8
channels (7.1), for preprocessing (``decode_clip``) and predict (``WindowStream``'s audio track).

The clips are written here with PyAV. The reference length of the repeated-timestamp clip is FFmpeg's own:
``ffmpeg -i clip -f wav -`` (the ``ffmpeg`` command, Debian package ``ffmpeg``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests_helpers import unavailable  # noqa: E402

from cfnsr.data.media import decode_clip  # noqa: E402
from cfnsr.predict.probe import probe  # noqa: E402
from cfnsr.predict.windows import WindowStream, plan_windows  # noqa: E402

AC3_FRAME = 1536  # samples per AC3 frame
RATE = 48000
ROOT = Path(__file__).resolve().parents[2]


def _tone(seconds: float, channels: int) -> np.ndarray:
    """float (channels, samples): channel c a sine of 220 * (c + 1) Hz, amplitude 0.05 * (c + 1)."""
    t = np.arange(int(RATE * seconds)) / RATE
    return np.stack([0.05 * (c + 1) * np.sin(2 * np.pi * 220 * (c + 1) * t) for c in range(channels)])


def _write(path: Path, codec: str, layout: str, seconds: float, frame: int) -> None:
    """A 64x48 25 fps MPEG-4 video with ``codec`` audio of ``layout``, interleaved as a muxer expects."""
    channels = av.AudioLayout(layout).nb_channels
    signal = _tone(seconds, channels)
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(codec, rate=RATE, layout=layout)
        shown = 0

        def video_until(t: float) -> None:
            nonlocal shown
            while shown / 25 <= t:
                picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), shown * 2 % 255, np.uint8),
                                                     format="rgb24")
                picture.pts = shown
                shown += 1
                for p in v.encode(picture):
                    out.mux(p)

        for i in range(0, signal.shape[1] - frame + 1, frame):
            # packed s16: PyAV's from_ndarray mis-sizes planar frames of 8 channels
            block = (signal[:, i:i + frame] * 32767).astype(np.int16).T.reshape(1, -1)
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="s16", layout=layout)
            f.sample_rate, f.pts = RATE, i
            for p in a.encode(f):
                out.mux(p)
            video_until(i / RATE)
        for p in a.encode(None):
            out.mux(p)
        video_until(seconds - 0.04)
        for p in v.encode(None):
            out.mux(p)


def repeated_timestamp_avi(path: Path, seconds: float = 4.0, repeat: int = 4) -> Path:
    """An AVI with AC3 stereo whose audio timestamps each repeat ``repeat`` times.

    FFmpeg writes AC3 into AVI as variable-size chunks (strh dwSampleSize 0: one chunk, one timestamp step). Setting
    dwSampleSize and the WAVEFORMATEX nBlockAlign to ``repeat`` chunks' bytes makes the demuxer derive timestamps
    from byte counts in units of that size, as in real files whose header gives a wrong sample size: 0, 0, 0, 0, 1,
    1, ... The audio itself is untouched.
    """
    _write(path, "ac3", "stereo", seconds, AC3_FRAME)
    data = bytearray(path.read_bytes())
    strh = data.find(b"strh", data.find(b"strh") + 4)  # the second stream header: audio
    assert data[strh + 8:strh + 12] == b"auds"
    strf = data.find(b"strf", strh)
    with av.open(str(path)) as c:
        chunk = next(p.size for p in c.demux(audio=0) if p.size)
    struct.pack_into("<I", data, strh + 8 + 44, repeat * chunk)  # AVISTREAMHEADER.dwSampleSize
    struct.pack_into("<H", data, strf + 8 + 12, repeat * chunk)  # WAVEFORMATEX.nBlockAlign
    path.write_bytes(bytes(data))
    return path


def ffmpeg_wav_seconds(path: Path) -> float:
    """Seconds of audio in ``ffmpeg -i path -f wav -`` (the reference decode)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        unavailable("the ffmpeg command is not installed (apt-get install ffmpeg)")
    raw = subprocess.run([exe, "-v", "error", "-i", str(path), "-vn", "-f", "s16le", "-ac", "1", "-ar", str(RATE),
                          "-"], check=True, capture_output=True).stdout
    return len(raw) / 2 / RATE


def test_repeated_audio_timestamps_decode_to_the_whole_track(tmp_path: Path):
    path = repeated_timestamp_avi(tmp_path / "repeated.avi")
    with av.open(str(path)) as c:
        times = [p.pts for p in c.demux(audio=0) if p.size]
    assert times[:8] == [0, 0, 0, 0, 1, 1, 1, 1], "the clip must carry repeated audio timestamps"
    reference = ffmpeg_wav_seconds(path)
    assert reference == pytest.approx(4.0, abs=AC3_FRAME / RATE)

    clip = decode_clip(path, 16, 16000)
    assert clip.audio is not None
    # before: 1.024 s (the frames stacked at their repeated timestamps), "audio too short" for a 2.95 s window
    assert len(clip.audio) / 16000 == pytest.approx(reference, abs=1 / 16000)
    # the content is the tone, not silence: 220 Hz and 440 Hz averaged, peak ~ (0.05 + 0.1) / 2
    assert np.abs(clip.audio[16000:48000]).max() > 0.06

    # predict's streaming track places the same frames the same way
    info = probe(path)
    window = plan_windows(info.duration, info.duration, info.duration, 16, 0.5, 2.45)
    (raw,) = list(WindowStream(path, window, 16000, int(2.45 * 16000)))
    assert raw.audio_coverage == 1.0
    start = int(0.5 * 16000)
    assert np.allclose(raw.audio, clip.audio[start:start + int(2.45 * 16000)], atol=1e-6)


def test_monotonic_timestamps_still_place_a_skipped_packet_as_a_gap(tmp_path: Path):
    """The sequential fallback is only for timestamps that repeat or run back: a hole in monotonic timestamps
    (a dropped packet) still stays a hole, so the rest of the track is not pulled earlier."""
    path = tmp_path / "hole.mkv"
    frame = 1024
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
        signal = _tone(2.0, 1)
        for k in range(50):
            pic = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            pic.pts = k
            for p in v.encode(pic):
                out.mux(p)
        for i in range(0, signal.shape[1] - frame + 1, frame):
            if i // frame == 20:
                continue  # the hole: 1024 samples never written
            f = av.AudioFrame.from_ndarray((signal[:, i:i + frame] * 32767).astype(np.int16), format="s16",
                                           layout="mono")
            f.sample_rate, f.pts = RATE, i
            for p in a.encode(f):
                out.mux(p)
        for p in (*v.encode(None), *a.encode(None)):
            out.mux(p)
    clip = decode_clip(path, 8, RATE)
    assert clip.audio is not None
    hole = clip.audio[20 * frame + 8:21 * frame - 8]
    assert np.abs(hole).max() == 0.0
    after = clip.audio[21 * frame:22 * frame]
    assert np.allclose(after, signal[0, 21 * frame:22 * frame], atol=2 / 32768)


# ----------------------------------------------------------------------------------------------- 8 channels

_DECODE_IN_CHILD = textwrap.dedent("""
    import sys
    from cfnsr.data.media import decode_clip
    clip = decode_clip(sys.argv[1], 8, 16000)
    print(len(clip.audio), float(abs(clip.audio).max()))
""")


@pytest.mark.parametrize("codec,container", [("aac", "mp4"), ("pcm_s16le", "mkv"), ("flac", "mkv")])
def test_eight_channel_audio_decodes_without_crashing(tmp_path: Path, codec: str, container: str):
    """7.1 audio is averaged to mono; before, AAC 7.1 (planar float) killed the process with SIGSEGV (rc -11)."""
    path = tmp_path / f"seven_one.{container}"
    _write(path, codec, "7.1", 2.0, 1024)
    # in a child process: a crash must fail this test, not end the test session
    import os
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _DECODE_IN_CHILD, str(path)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, f"decode_clip on 7.1 {codec} ended with {done.returncode}: {done.stderr[-2000:]}"
    n, peak = done.stdout.split()
    assert int(n) >= int(1.9 * 16000) and float(peak) > 0.05

    # and the average is the mean of the 8 channels (FFmpeg's downmix would weight them)
    clip = decode_clip(path, 8, RATE)
    assert clip.audio is not None
    expected = _tone(2.0, 8).mean(axis=0)
    if codec != "aac":  # lossless: the mean of the written int16 samples
        written = (_tone(2.0, 8) * 32767).astype(np.int16).astype(np.float32) / 32768
        n = min(len(clip.audio), written.shape[1])
        assert np.allclose(clip.audio[:n], written.mean(axis=0)[:n], atol=1e-6)
    else:  # lossy: close to the mean over the middle of the clip (the encoder's delay aside)
        a, b = RATE // 2, RATE
        lag = int(np.argmax(np.correlate(clip.audio[a:b], expected[a:a + 2048], mode="valid")))
        assert np.corrcoef(clip.audio[a + lag:a + lag + 4096], expected[a:a + 4096])[0, 1] > 0.9
