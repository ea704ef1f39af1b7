"""Tests of the synthetic RAVDESS-format corpus generator (cfnsr.data.synthetic).

A small corpus (2 actors x 8 clips, 128x72, 10 fps) is generated once per module; a few 1280x720 clips check the
drawing at the real RAVDESS resolution.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from itertools import combinations
from pathlib import Path

import av
import numpy as np
import pytest

from cfnsr.data import synthetic as syn
from cfnsr.data.ravdess import EMOTIONS, RavdessName, parse_name

SMALL = dict(actors=2, width=128, height=72, fps=10, duration=3.0, clips_per_actor=8, seed=3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return syn.generate_corpus(tmp_path_factory.mktemp("syn") / "corpus", workers=1, progress=False, **SMALL)


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [c.strip() for c in lines[0].split(",")]
    return header, np.array([[float(v) for v in line.split(",")] for line in lines[1:]])


def _landmarks(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys), each (rows, 68), looked up by column name."""
    header, rows = _read_csv(path)
    ix = [header.index(f"x_{i}") for i in range(68)]
    iy = [header.index(f"y_{i}") for i in range(68)]
    return rows[:, ix], rows[:, iy]


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 (T, H, W, 3) RGB and audio float32 (N,)."""
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return frames, audio


# ------------------------------------------------------------------------------------------------------------------
# Layout, names, files
# ------------------------------------------------------------------------------------------------------------------

def test_names_and_class_balance() -> None:
    names = syn.selected_names(syn.SyntheticConfig())
    assert len(names) == 1440 and len(set(names)) == 1440
    counts = Counter(n.emotion for n in names)
    assert counts == {1: 96, **{e: 192 for e in range(2, 9)}}
    assert not any(n.emotion == 1 and n.intensity == 2 for n in names)
    assert Counter(n.actor for n in names) == {a: 60 for a in range(1, 25)}
    # A small per-actor subset still covers every class.
    small = syn.selected_names(syn.SyntheticConfig(actors=2, clips_per_actor=8))
    assert len(small) == 16 and {n.emotion for n in small} == set(range(1, 9))
    assert {n.emotion for n in syn.selected_names(syn.SyntheticConfig(actors=1, emotions=[2, 5]))} == {2, 5}


def test_layout(corpus: Path) -> None:
    cfg = syn.SyntheticConfig(**SMALL)
    expected = {n.stem for n in syn.selected_names(cfg)}
    mp4s = sorted(corpus.glob("Actor_*/*.mp4"))
    assert {p.stem for p in mp4s} == expected
    for p in mp4s:
        assert p.parent.name == f"Actor_{parse_name(p).actor:02d}"
        assert parse_name(p).modality == 1 and parse_name(p).vocal_channel == 1
    assert {p.stem for p in (corpus / "landmarks").glob("*.csv")} == expected
    assert sorted(d.name for d in corpus.iterdir() if d.is_dir()) == ["Actor_01", "Actor_02", "landmarks"]
    assert not [p for p in corpus.rglob(".*")], "temp / pending files left behind"
    meta = json.loads((corpus / "synthetic.json").read_text())
    assert meta["config"] == cfg.to_json() and meta["clips"] == 16


def test_mp4_streams(corpus: Path) -> None:
    cfg = syn.SyntheticConfig(**SMALL)
    path = next(corpus.glob("Actor_02/*.mp4"))
    with av.open(str(path)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1 and len(c.streams) == 2
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert (v.codec_context.width, v.codec_context.height) == (128, 72)
        assert a.codec_context.name == "aac" and a.codec_context.sample_rate == 48000
        assert a.codec_context.layout.nb_channels == 1
        assert float(v.duration * v.time_base) == pytest.approx(cfg.num_frames / cfg.fps, abs=1e-3)
        assert float(a.duration * a.time_base) == pytest.approx(cfg.duration, abs=0.03)
    frames, audio = _decode(path)
    assert frames.shape == (cfg.num_frames, 72, 128, 3) == (30, 72, 128, 3)
    assert len(audio) / 48000 == pytest.approx(cfg.duration, abs=0.03)
    assert len(audio) / 48000 >= 2.95


def test_csv_header_and_rows(corpus: Path) -> None:
    cfg = syn.SyntheticConfig(**SMALL)
    path = next((corpus / "landmarks").glob("*.csv"))
    first = path.read_text().splitlines()[0]
    assert first.startswith("frame, face_id, timestamp, confidence, success, ")  # OpenFace's ', ' separators
    header, rows = _read_csv(path)
    for col in ("x_0", "x_67", "y_0", "y_67", "X_0", "gaze_0_x", "pose_Tx", "AU01_r"):
        assert col in header
    assert header.index("x_0") > 5, "landmarks must not be the first columns (readers look them up by name)"
    assert len(header) == len(set(header)) and rows.shape == (cfg.num_frames, len(header))
    np.testing.assert_array_equal(rows[:, header.index("frame")], np.arange(1, cfg.num_frames + 1))
    np.testing.assert_allclose(rows[:, header.index("timestamp")], np.arange(cfg.num_frames) / cfg.fps, atol=1e-3)
    assert (rows[:, header.index("success")] == 1).all()


def _skin_mask(frame: np.ndarray, skin: tuple[float, float, float], tol: float = 45.0) -> np.ndarray:
    return np.linalg.norm(frame.astype(np.float64) - np.asarray(skin), axis=-1) < tol


def test_landmarks_cover_drawn_face(corpus: Path) -> None:
    for mp4 in sorted(corpus.glob("Actor_*/*.mp4"))[::3]:
        name = parse_name(mp4)
        frames, _ = _decode(mp4)
        xs, ys = _landmarks(corpus / "landmarks" / f"{name.stem}.csv")
        skin = syn.actor_look(SMALL["seed"], name.actor).skin
        for k in (0, len(frames) // 2, len(frames) - 1):
            x0, y0, x1, y1 = xs[k].min(), ys[k].min(), xs[k].max(), ys[k].max()
            assert 0 <= x0 < x1 <= 127 and 0 <= y0 < y1 <= 71
            mask = _skin_mask(frames[k], skin)
            box = np.zeros_like(mask)
            box[int(y0):int(np.ceil(y1)) + 1, int(x0):int(np.ceil(x1)) + 1] = True
            assert mask[box].mean() > 0.5, "the landmark box should be mostly face"
            # The box holds the face below the hairline: most of the visible skin (the neck aside) is inside it.
            head = mask.copy()
            head[int(np.ceil(y1)) + 2:] = False
            assert head[box].sum() / head.sum() > 0.8


def test_full_resolution_features(tmp_path: Path) -> None:
    """At 1280x720 the iBUG points sit on the drawn features: eyes, lips and brows are not skin, the cheeks are."""
    root = syn.generate_corpus(tmp_path, workers=1, progress=False, actors=1, width=1280, height=720, emotions=[6],
                               clips_per_actor=1, fps=10, duration=2.95)
    mp4s = sorted(root.glob("Actor_01/*.mp4"))
    assert len(mp4s) == 1
    frames, _ = _decode(mp4s[0])
    assert frames.shape[1:] == (720, 1280, 3)
    xs, ys = _landmarks(root / "landmarks" / f"{mp4s[0].stem}.csv")
    skin = syn.actor_look(0, 1).skin
    k = 10
    pts = np.stack([xs[k], ys[k]], axis=1)
    is_skin = _skin_mask(frames[k], skin)

    def at(p: np.ndarray) -> bool:
        return bool(is_skin[int(round(p[1])), int(round(p[0]))])

    assert at(pts[[3, 31]].mean(0)) and at(pts[[13, 35]].mean(0)) and at(pts[8] + [0, -15])  # cheeks, chin
    assert not at(pts[36:42].mean(0)) and not at(pts[42:48].mean(0))  # eyes
    assert not at(pts[[51, 57]].mean(0))  # mouth (lips or opening)
    assert not at(pts[19]) and not at(pts[24])  # brows
    assert at(pts[0] + [15, 0]) and not at(pts[0] + [-15, 0])  # jaw points are on the face outline


# ------------------------------------------------------------------------------------------------------------------
# Reproducibility, resume, config
# ------------------------------------------------------------------------------------------------------------------

def test_deterministic_and_parallel_equals_serial(corpus: Path, tmp_path: Path) -> None:
    again = syn.generate_corpus(tmp_path / "again", workers=2, progress=False, **SMALL)
    for csv in sorted((corpus / "landmarks").glob("*.csv")):
        assert csv.read_bytes() == (again / "landmarks" / csv.name).read_bytes()
    for mp4 in sorted(corpus.glob("Actor_*/*.mp4"))[::2]:
        # Single-threaded x264 + bitexact muxing: even the files are identical on one machine.
        assert mp4.read_bytes() == (again / mp4.parent.name / mp4.name).read_bytes()
        f1, a1 = _decode(mp4)
        f2, a2 = _decode(again / mp4.parent.name / mp4.name)
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(a1, a2)
    # Another seed gives another corpus.
    other = syn.render_clip(parse_name(next(corpus.glob("Actor_01/*.mp4"))), syn.SyntheticConfig(**{**SMALL,
                                                                                                     "seed": 4}))
    first = _decode(next(corpus.glob("Actor_01/*.mp4")))[0]
    assert np.abs(other.frames[0].astype(int) - first[0]).mean() > 3


def test_resume_regenerates_only_missing(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(corpus, root)
    (root / "synthetic.json").unlink()  # an interrupted run: no final config file yet
    mp4s = sorted(root.glob("Actor_*/*.mp4"))
    gone_mp4, gone_csv = mp4s[3], root / "landmarks" / f"{mp4s[7].stem}.csv"
    gone_mp4.unlink()
    gone_csv.unlink()
    files = [p for p in root.rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in files}
    syn.generate_corpus(root, workers=1, progress=False, **SMALL)
    assert gone_mp4.exists() and gone_csv.exists()
    assert gone_csv.read_bytes() == (corpus / "landmarks" / gone_csv.name).read_bytes()
    np.testing.assert_array_equal(_decode(gone_mp4)[0], _decode(corpus / gone_mp4.parent.name / gone_mp4.name)[0])
    for p, mtime in before.items():
        assert p.stat().st_mtime_ns == mtime, f"{p.name} was rewritten"
    assert (root / "synthetic.json").exists()


def test_config_mismatch(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(syn.SyntheticConfigMismatch, match="(?s)seed.*Delete the folder or choose another root"):
        syn.generate_corpus(corpus, workers=1, progress=False, **{**SMALL, "seed": 99})
    # An interrupted run (pending file only) is protected too.
    root = tmp_path / "partial"
    root.mkdir()
    (root / ".synthetic.pending.json").write_text(json.dumps({"config": syn.SyntheticConfig(actors=1).to_json()}))
    with pytest.raises(syn.SyntheticConfigMismatch):
        syn.generate_corpus(root, workers=1, progress=False, actors=2)
    # The CLI reports it as an error instead of a traceback.
    assert syn.main([str(corpus), "--seed", "99", "--no-progress"]) == 2


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="duration"):
        syn.SyntheticConfig(duration=2.5)
    with pytest.raises(ValueError, match="even"):
        syn.SyntheticConfig(width=321)
    with pytest.raises(ValueError, match="emotions"):
        syn.SyntheticConfig(emotions=[0, 9])
    with pytest.raises(TypeError):
        syn.make_config(unknown_knob=1)
    assert syn.SyntheticConfig().num_frames == 50  # 3.3 s at 15 fps


# ------------------------------------------------------------------------------------------------------------------
# The class signal
# ------------------------------------------------------------------------------------------------------------------

def _pairs_ok(intensities: tuple[int, ...], a: int, b: int) -> list[int]:
    return [i for i in intensities if not ((a == 1 or b == 1) and i == 2)]


def test_signal_split_across_modalities() -> None:
    for a, b in syn.FACE_CONFUSABLE:
        for i in _pairs_ok((1, 2), a, b):
            assert syn.face_expression(a, i) == syn.face_expression(b, i), (EMOTIONS[a - 1], EMOTIONS[b - 1])
            assert syn.voice_params(a, i) != syn.voice_params(b, i)
    # Strong calm looks like neutral too (calm has no expression to intensify).
    assert syn.face_expression(2, 2) == syn.face_expression(1, 1)
    for a, b in syn.VOICE_CONFUSABLE:
        for i in (1, 2):
            assert syn.voice_params(a, i) == syn.voice_params(b, i), (EMOTIONS[a - 1], EMOTIONS[b - 1])
            assert syn.face_expression(a, i) != syn.face_expression(b, i)
    # Exactly the listed pairs are confusable in each modality; every pair is separated by at least one.
    for a, b in combinations(range(1, 9), 2):
        face_same = syn.face_expression(a, 1) == syn.face_expression(b, 1)
        voice_same = syn.voice_params(a, 1) == syn.voice_params(b, 1)
        assert face_same == ((a, b) in syn.FACE_CONFUSABLE)
        assert voice_same == ((a, b) in syn.VOICE_CONFUSABLE)
        assert not (face_same and voice_same)


def test_face_geometry_reflects_expression() -> None:
    def lm(emotion: int) -> np.ndarray:
        return syn.face_landmarks_local(syn.face_expression(emotion, 2))

    neutral, happy, sad, angry, fear = lm(1), lm(3), lm(4), lm(5), lm(6)
    np.testing.assert_array_equal(lm(1), lm(2))

    def corners_up(p: np.ndarray) -> float:  # y points down: + when the corners are above the lip centre
        return float(p[[51, 57], 1].mean() - p[[48, 54], 1].mean())

    assert corners_up(happy) > corners_up(neutral) + 0.1 > corners_up(sad) + 0.2
    eye_h = lambda p: float(p[40, 1] - p[38, 1])  # noqa: E731
    assert eye_h(fear) > 1.4 * eye_h(neutral) > 1.4 * eye_h(angry)
    assert fear[19, 1] < neutral[19, 1] - 0.1 < angry[19, 1] - 0.1  # brow height (19 = brow middle)
    assert angry[21, 1] - angry[17, 1] > 0.05  # anger: inner brow end lowered
    assert sad[21, 1] - sad[17, 1] < -0.05  # sadness: inner brow end raised
    gap = lambda p: float(p[66, 1] - p[62, 1])  # noqa: E731
    assert gap(fear) > gap(neutral) + 0.15
    # Articulation and blinks move only the lips and the eyelids.
    moving = syn.face_landmarks_local(syn.face_expression(1, 1), np.array([0.0, 0.4]), np.array([1.0, 0.1]))
    changed = np.nonzero(np.abs(moving[1] - moving[0]).max(1) > 1e-9)[0]
    assert set(changed) <= set(range(36, 48)) | set(range(48, 68))


def _voice_features(emotion: int, actor: int, statement: int) -> np.ndarray:
    """[log RMS while speaking, spectral centroid (kHz), speech onset (s)] of a rendered voice."""
    cfg = syn.SyntheticConfig(seed=1)
    name = RavdessName(1, 1, emotion, 1, statement, 1, actor)
    y, params = syn.render_audio(name, cfg)
    sr = cfg.sample_rate
    speech = y[int(1.0 * sr):int(2.9 * sr)]
    spec = np.abs(np.fft.rfft(speech)) ** 2
    freqs = np.fft.rfftfreq(len(speech), 1 / sr)
    rms = np.sqrt(np.mean(speech ** 2))
    assert np.sqrt(np.mean(y[: int(0.25 * sr)] ** 2)) < 0.1 * rms, "silence before the speech starts"
    tail = y[int(2.95 * sr):int(2.95 * sr) + 6 * 2400].reshape(6, 2400)  # 6 windows of 50 ms after 2.95 s
    assert np.sqrt(np.mean(tail ** 2, axis=1)).max() > 0.3 * rms, "speech lasts past 2.95 s"
    assert 0.3 <= params.speech_start <= 0.6 and params.speech_end > 2.95
    return np.array([np.log(rms), (spec * freqs).sum() / spec.sum() / 1000, params.speech_start])


def test_voice_features_follow_voice_groups() -> None:
    def group_mean(emotion: int) -> np.ndarray:
        return np.mean([_voice_features(emotion, actor, s) for actor in (1, 2) for s in (1, 2)], axis=0)

    neutral, calm, sad, angry, happy, surprised = (group_mean(e) for e in (1, 2, 4, 5, 3, 8))
    # Audio-confusable pairs sound alike (only per-clip jitter apart) ...
    assert abs(calm[0] - sad[0]) < 0.2 and abs(happy[0] - surprised[0]) < 0.2
    # ... while face-confusable pairs do not: calm is quieter and darker than neutral, anger louder and brighter.
    assert neutral[0] - calm[0] > 0.3
    assert angry[0] - neutral[0] > 0.5 and angry[1] > neutral[1]
    # Male actors (odd) speak lower than female ones.
    f0 = {a: syn.render_audio(RavdessName(1, 1, 1, 1, 1, 1, a), syn.SyntheticConfig())[1].f0 for a in (1, 2)}
    assert f0[1] < 150 < f0[2]
