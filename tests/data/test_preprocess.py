"""cfnsr.data.preprocess end to end on tiny real mp4s: skips with reasons, errors, cache format, resume, force,
settings checks, crops that contain the face, the detector fallback and the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from media_factory import SKIN, face_track, make_clip_with_csv, track_landmarks, write_clip, write_openface_csv
from omegaconf import OmegaConf

from cfnsr.data.cache import CacheError, cached_clips, load_clip, load_meta
from cfnsr.data.preprocess import NoUsableClipsError, preprocess_corpus
from cfnsr.data.preprocess_report import format_report
from cfnsr.data.ravdess import NotRavdessError
from cfnsr.data.settings import PreprocessSettings, check_cache

SMALL = PreprocessSettings(frames=8, size=32)
TINY = dict(width=160, height=90, fps=10, duration=3.2)


def _good(root: Path, stem: str, **kwargs) -> Path:
    return make_clip_with_csv(root, stem, **{**TINY, **kwargs})


def _run(root: Path, cache: Path, settings: PreprocessSettings = SMALL, **kwargs) -> dict:
    return preprocess_corpus(root, cache, settings, **{"workers": 0, "progress": False, **kwargs})


def _mtimes(cache: Path) -> dict[str, float]:
    return {p.name: (p / "frames.npy").stat().st_mtime_ns for p in (cache / "clips").iterdir()
            if not p.name.startswith(".")}


def _skin_fraction(pixels: np.ndarray) -> float:
    return float(np.mean(np.abs(pixels.reshape(-1, 3).astype(int) - SKIN).sum(1) < 45))


def _cheeks(frames: np.ndarray) -> np.ndarray:
    """Both cheeks of a face centred in a 224 x 224 crop (below the eyes, beside the nose, above the mouth)."""
    return np.concatenate([frames[:, 110:140, 60:90], frames[:, 110:140, 134:164]], axis=2)


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs, errors, report
# ---------------------------------------------------------------------------------------------------------------

BAD = {  # file -> expected kind
    "Actor_01/02-01-03-01-01-01-01.mp4": "video-only",
    "Actor_01/01-02-03-01-01-01-01.mp4": "song",
    "Actor_01/01-01-04-01-01-01-01.mp4": "decode",  # zero bytes
    "Actor_01/01-01-04-01-01-02-01.mp4": "decode",  # truncated
    "Actor_01/01-01-04-01-02-01-01.mp4": "no-audio",
    "Actor_01/01-01-04-01-02-02-01.mp4": "audio-too-short",
    "Actor_01/01-01-05-01-01-01-01.mp4": "landmarks",  # unreadable CSV
    "Actor_01/01-01-05-01-01-02-01.mp4": "landmarks",  # CSV of another (1280x720) video
}
NOT_CLIPS = ["Actor_01/01-01-03-01-01-01.mp4", "Actor_01/01-01-09-01-01-01-01.mp4",  # 6 fields, emotion 09
             "Actor_01/notes.mp4"]
GOOD = ["01-01-03-01-01-01-01", "01-01-03-01-01-02-01", "01-01-03-01-02-01-01"]


@pytest.fixture(scope="module")
def messy_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("messy")
    _good(root, GOOD[0])
    _good(root, GOOD[1], csv_layout="landmarks-actor")
    _good(root, GOOD[2], csv_layout="actor")
    for rel in ("Actor_01/02-01-03-01-01-01-01.mp4", "Actor_01/01-02-03-01-01-01-01.mp4", "Actor_01/notes.mp4",
                "Actor_01/01-01-03-01-01-01.mp4", "Actor_01/01-01-09-01-01-01-01.mp4"):
        write_clip(root / rel, **TINY)
    zero = _good(root, "01-01-04-01-01-01-01")
    zero.write_bytes(b"")
    cut = _good(root, "01-01-04-01-01-02-01")
    cut.write_bytes(cut.read_bytes()[:20000])
    _good(root, "01-01-04-01-02-01-01", audio=False)
    _good(root, "01-01-04-01-02-02-01", duration=2.5)
    _good(root, "01-01-05-01-01-01-01")
    (root / "landmarks" / "01-01-05-01-01-01-01.csv").write_bytes(b"\xff\xfe\x00garbage\x00\x81")
    _good(root, "01-01-05-01-01-02-01", csv=False)
    xs, ys = track_landmarks(face_track(1280, 720, 32, center=(0.8, 0.7)))
    write_openface_csv(root / "landmarks" / "01-01-05-01-01-02-01.csv", xs, ys, fps=10)
    return root


@pytest.fixture(scope="module")
def messy_run(messy_corpus, tmp_path_factory) -> tuple[dict, Path]:
    cache = tmp_path_factory.mktemp("messy_cache")
    return _run(messy_corpus, cache), cache


def test_bad_inputs_are_skipped_with_a_reason_naming_the_file(messy_run):
    report, _ = messy_run
    assert report["processed"] == GOOD
    kinds = {s["file"]: s["kind"] for s in report["skipped"]}
    assert kinds == BAD
    assert [s["file"] for s in report["not_a_clip"]] == NOT_CLIPS
    assert {s["kind"] for s in report["not_a_clip"]} == {"not-a-clip"}
    for s in report["skipped"] + report["not_a_clip"]:
        if s["kind"] not in ("video-only", "song"):
            assert Path(s["file"]).name in s["reason"], s
    reasons = {s["file"]: s["reason"] for s in report["skipped"] + report["not_a_clip"]}
    assert "empty file (0 bytes)" in reasons["Actor_01/01-01-04-01-01-01-01.mp4"]
    assert "emotion=09" in reasons["Actor_01/01-01-09-01-01-01-01.mp4"]
    assert "window needs" in reasons["Actor_01/01-01-04-01-02-02-01.mp4"]
    assert "outside the 160x90 frame" in reasons["Actor_01/01-01-05-01-01-02-01.mp4"]


def test_report_content_and_summary(messy_run):
    report, cache = messy_run
    assert json.loads((cache / "preprocess_report.json").read_text()) == report
    c = report["counts"]
    assert (c["mp4_found"], c["usable"], c["processed"], c["reused"], c["skipped"]) == (14, 3, 3, 0, 8)
    assert c["not_a_clip"] == 3 and c["rebuilt"] == 0 and c["landmarks_mismatch"] == 0
    assert c["skipped_by_kind"]["decode"] == 2 and report["fallback_detector"] == []
    assert report["settings"] == SMALL.to_dict() and report["elapsed_s"] > 0
    text = format_report(report)
    assert "3 usable clip(s)" in text and "8 skipped of 14 video(s)" in text and "2 decode" in text
    assert "3 file(s) in the corpus folders are not clips" in text
    assert "01-01-04-01-02-01-01.mp4: no audio stream" in text


def test_cache_entries_follow_the_contract(messy_run):
    _, cache = messy_run
    assert cached_clips(cache) == GOOD
    frames, mfcc = load_clip(cache, GOOD[0])
    assert isinstance(frames, np.memmap) and frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    assert mfcc.shape == (13, 212) and mfcc.dtype == np.float32
    frames2, _ = load_clip(cache, GOOD[0], mmap=False)
    assert not isinstance(frames2, np.memmap)
    meta = load_meta(cache, GOOD[1])
    assert (meta["stem"], meta["actor"], meta["label"], meta["face_source"]) == (GOOD[1], 1, 2, "landmarks")
    assert meta["landmark_csv"] == "landmarks/Actor_01/01-01-03-01-01-02-01.csv"
    assert load_meta(cache, GOOD[2])["landmark_csv"] == "Actor_01/01-01-03-01-02-01-01.csv"
    settings = json.loads((cache / "settings.json").read_text())
    assert settings["size"] == 32 and settings["hash"] == SMALL.hash
    with pytest.raises(CacheError, match="no complete cache entry"):
        load_clip(cache, "01-01-04-01-01-01-01")


def test_the_cache_keeps_the_mfcc_audio_window_as_int16(messy_run, messy_corpus):
    """audio.npy is the MFCC's window (after offset, duration x sample_rate samples) x 32767 as int16, with its facts."""
    from cfnsr.data.cache import file_sha256, load_audio
    from cfnsr.data.features import audio_window, compute_mfcc
    from cfnsr.data.media import decode_clip

    _, cache = messy_run
    stem = GOOD[0]
    entry = cache / "clips" / stem
    raw = np.load(entry / "audio.npy")
    meta = load_meta(cache, stem)
    assert raw.dtype == np.int16 and raw.shape == (int(SMALL.audio_duration * SMALL.sample_rate),)
    assert meta["audio_scale"] == 32767 and meta["audio_shape"] == list(raw.shape) and meta["audio_clipped"] == 0
    facts = meta["files"]["audio.npy"]
    assert facts == {"bytes": (entry / "audio.npy").stat().st_size, "shape": list(raw.shape), "dtype": "int16",
                     "sha256": file_sha256(entry / "audio.npy")}
    audio = load_audio(cache, stem)
    assert audio.dtype == np.float32
    np.testing.assert_array_equal(audio, raw.astype(np.float32) / np.float32(32767))
    # the same samples as the window cut from a fresh decode: the offset is applied, nothing else is
    clip = decode_clip(messy_corpus / "Actor_01" / f"{stem}.mp4", SMALL.frames, SMALL.sample_rate, with_audio=True)
    window = audio_window(clip.audio, SMALL.sample_rate, SMALL.audio_offset, SMALL.audio_duration)
    assert np.abs(window).max() > 0.05  # a real signal, not silence
    assert np.max(np.abs(audio - window)) <= 0.5 / 32767 + 1e-7
    shifted = audio_window(clip.audio, SMALL.sample_rate, SMALL.audio_offset + 0.01, SMALL.audio_duration)
    assert np.max(np.abs(audio - shifted)) > 100 / 32767
    # and its MFCC is the cached one up to the int16 rounding
    cached = load_clip(cache, stem)[1]
    mfcc = compute_mfcc(audio, SMALL.sample_rate, SMALL.n_mfcc, SMALL.n_fft, SMALL.hop_length)
    assert np.max(np.abs(mfcc - cached)) < 1e-3 * np.max(np.abs(cached))


def test_nothing_usable_is_an_error(tmp_path):
    root = tmp_path / "corpus"
    write_clip(root / "Actor_01" / "02-01-03-01-01-01-01.mp4", **TINY)
    _good(root, "01-01-04-01-02-01-01", audio=False)
    with pytest.raises(NoUsableClipsError, match="no usable clip"):
        _run(root, tmp_path / "cache")
    report = json.loads((tmp_path / "cache" / "preprocess_report.json").read_text())
    assert report["counts"]["skipped"] == 2


def test_a_root_that_is_not_ravdess_is_an_error(tmp_path):
    with pytest.raises(NotRavdessError, match="not a directory"):
        _run(tmp_path / "missing", tmp_path / "cache")
    plain = tmp_path / "videos"
    write_clip(plain / "holiday.mp4", **TINY)
    with pytest.raises(NotRavdessError, match="no Actor_\\* folders"):
        _run(plain, tmp_path / "cache")
    write_clip(plain / "Actor_01" / "holiday.mp4", **TINY)
    with pytest.raises(NotRavdessError, match="none with a valid RAVDESS name"):
        _run(plain, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # refused before touching the cache


# ---------------------------------------------------------------------------------------------------------------
# Resume, force, settings
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("three")
    for stem in GOOD:
        _good(root, stem)
    return root


def test_resume_redoes_only_missing_entries_and_cleans_temp_dirs(three_clips, tmp_path):
    cache = tmp_path / "cache"
    _run(three_clips, cache)
    before = _mtimes(cache)
    # what an interrupted run leaves: one entry missing, a temporary directory of a dead writer
    import shutil
    shutil.rmtree(cache / "clips" / GOOD[1])
    import socket
    stale = cache / "clips" / f".{GOOD[1]}.tmp-999999999@{socket.gethostname()}"  # a dead writer of this host
    stale.mkdir()
    (stale / "frames.npy").write_bytes(b"partial")
    time.sleep(0.01)
    report = _run(three_clips, cache)
    assert report["processed"] == [GOOD[1]] and report["reused"] == [GOOD[0], GOOD[2]]
    after = _mtimes(cache)
    assert after[GOOD[0]] == before[GOOD[0]] and after[GOOD[2]] == before[GOOD[2]]
    assert after[GOOD[1]] != before[GOOD[1]]
    assert not stale.exists() and cached_clips(cache) == GOOD


def test_force_redoes_everything(three_clips, tmp_path):
    cache = tmp_path / "cache"
    _run(three_clips, cache)
    before = _mtimes(cache)
    report = _run(three_clips, cache, force=True)
    assert report["processed"] == GOOD and report["reused"] == []
    assert all(_mtimes(cache)[s] != before[s] for s in GOOD)


def test_killed_run_resumes(tmp_path):
    root = tmp_path / "corpus"
    stems = [f"01-01-0{e}-01-01-01-01" for e in range(2, 8)]
    for stem in stems:
        _good(root, stem, width=320, height=180)
    cache = tmp_path / "cache"
    code = ("from cfnsr.data.preprocess import preprocess_corpus\nfrom cfnsr.data.settings import PreprocessSettings\n"
            f"preprocess_corpus({str(root)!r}, {str(cache)!r}, PreprocessSettings(frames=8, size=32), workers=0, "
            "progress=False)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not cached_clips(cache) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = cached_clips(cache)
    assert done, "the child made no entry within 60 s"
    before = _mtimes(cache)
    report = _run(root, cache)
    assert report["reused"] == done and sorted(report["processed"]) == sorted(set(stems) - set(done))
    assert cached_clips(cache) == sorted(stems)
    assert all(_mtimes(cache)[s] == before[s] for s in done)
    assert not [p for p in (cache / "clips").iterdir() if p.name.startswith(".")]


def test_settings_mismatch_is_refused_with_the_rebuild_command(three_clips, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(CacheError, match="settings.json missing"):
        check_cache(cache, SMALL)
    _run(three_clips, cache)
    check_cache(cache, SMALL)
    check_cache(cache, PreprocessSettings(**SMALL.to_dict()))
    bigger = PreprocessSettings(frames=8, size=48)
    with pytest.raises(CacheError, match=r"(?s)size: cache 32, requested 48.*preprocess\.force=true"):
        check_cache(cache, bigger)
    with pytest.raises(CacheError, match="size: cache 32, requested 48"):
        _run(three_clips, cache, settings=bigger)
    _run(three_clips, cache, settings=bigger, force=True)
    check_cache(cache, bigger)
    assert load_clip(cache, GOOD[0])[0].shape == (8, 48, 48, 3)


def test_settings_from_hydra_style_kwargs():
    cfg = OmegaConf.create({"frames": 30, "size": 224.0, "crop_margin": 0, "squash_before_crop": False,
                            "channel_order": "RGB", "face_fallback": "BlazeFace"})
    settings = PreprocessSettings(**cfg)
    assert settings == PreprocessSettings(crop_margin=0.0) and settings.hash == PreprocessSettings(crop_margin=0.0).hash
    assert settings.hash != PreprocessSettings().hash
    assert isinstance(settings.size, int) and isinstance(settings.crop_margin, float)
    for bad in ({"channel_order": "rgba"}, {"face_fallback": "dlib"}, {"frames": 2.5}, {"size": 0}):
        with pytest.raises(ValueError):
            PreprocessSettings(**bad)


# ---------------------------------------------------------------------------------------------------------------
# Crops: full-resolution face, public-code quirks, detector fallback, parallel workers
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hd_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hd")
    n = 32
    track = face_track(1280, 720, n, center=(0.72, 0.38), scale=0.2)  # off-centre face, ~290 px tall
    _good(root, "01-01-06-02-01-01-12", width=1280, height=720, track=track)
    return root


def test_hd_clip_crop_contains_the_face(hd_corpus, tmp_path):
    report = _run(hd_corpus, tmp_path / "cache", settings=PreprocessSettings())
    assert report["processed"] == ["01-01-06-02-01-01-12"]
    frames, mfcc = load_clip(tmp_path / "cache", "01-01-06-02-01-01-12")
    assert frames.shape == (30, 224, 224, 3) and mfcc.shape == (13, 212)
    assert _skin_fraction(_cheeks(frames)) > 0.9
    assert _skin_fraction(frames[:, :10, :10]) < 0.05  # the margin's corners are background
    # the same frame after squash-first cropping (the public code) and in BGR
    quirks = PreprocessSettings(squash_before_crop=True, crop_margin=0.0, channel_order="bgr")
    _run(hd_corpus, tmp_path / "quirks", settings=quirks)
    q, _ = load_clip(tmp_path / "quirks", "01-01-06-02-01-01-12")
    assert q.shape == (30, 224, 224, 3) and _skin_fraction(_cheeks(q)[..., ::-1]) > 0.9
    bgr = PreprocessSettings(channel_order="bgr")
    _run(hd_corpus, tmp_path / "bgr", settings=bgr)
    np.testing.assert_array_equal(load_clip(tmp_path / "bgr", "01-01-06-02-01-01-12")[0], frames[..., ::-1])


def test_detector_fallback_without_csv(tmp_path):
    root = tmp_path / "corpus"
    face = "01-01-03-01-01-01-02"
    blank = "01-01-03-01-01-02-02"
    _good(root, face, csv=False, width=320, height=180)
    _good(root, blank, csv=False, width=320, height=180, face=False)
    report = _run(root, tmp_path / "cache", settings=PreprocessSettings(frames=8, size=64))
    assert report["fallback_detector"] == [face] and report["center_crop"] == [blank]
    assert load_meta(tmp_path / "cache", face)["face_source"] == "detector"
    assert load_meta(tmp_path / "cache", face)["face_detector"] == "blazeface"
    assert load_meta(tmp_path / "cache", blank)["face_source"] == "center"
    frames, _ = load_clip(tmp_path / "cache", face)
    assert _skin_fraction(frames[:, 24:40, 24:40]) > 0.7
    # the same cache built with the Haar detector (as before BlazeFace): refused, never mixed with BlazeFace crops
    _stamp_haar(tmp_path / "cache")
    with pytest.raises(CacheError, match="face_fallback: cache 'haar', requested 'blazeface'"):
        _run(root, tmp_path / "cache", settings=PreprocessSettings(frames=8, size=64))
    assert "1 clip(s) cropped with the face detector, 1 centre-cropped" in format_report(report)
    with pytest.raises(NoUsableClipsError):
        _run(root, tmp_path / "strict", settings=PreprocessSettings(frames=8, size=64, face_fallback="none"))
    skipped = json.loads((tmp_path / "strict" / "preprocess_report.json").read_text())["skipped"]
    assert {s["kind"] for s in skipped} == {"no-landmarks"}
    assert all("no landmark CSV" in s["reason"] and "face_fallback=none" in s["reason"] for s in skipped)


def test_parallel_workers_give_the_same_cache(three_clips, tmp_path):
    serial = _run(three_clips, tmp_path / "serial")
    parallel = _run(three_clips, tmp_path / "parallel", workers=2)
    assert parallel["processed"] == serial["processed"] == GOOD
    for stem in GOOD:
        a, b = load_clip(tmp_path / "serial", stem), load_clip(tmp_path / "parallel", stem)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert sorted(os.listdir(tmp_path / "parallel" / "clips")) == GOOD  # no temporary directory left


def _stamp_haar(cache_dir: Path) -> None:
    """Make settings.json say what a cache built with the Haar detector (before BlazeFace) says."""
    from cfnsr.data import cache

    recorded = json.loads((cache_dir / "settings.json").read_text())
    settings = {k: v for k, v in recorded.items() if k not in ("format", "hash")}
    cache.write_settings(cache_dir, {**settings, "face_fallback": "haar"})


def test_a_detector_free_haar_cache_is_restamped_and_then_grows_with_blazeface(three_clips, tmp_path):
    cache_dir = tmp_path / "cache"
    blaze = PreprocessSettings(frames=8, size=64)
    _run(three_clips, cache_dir, settings=blaze)  # every clip has its CSV: no entry uses the detector
    _stamp_haar(cache_dir)
    before = _mtimes(cache_dir)
    report = _run(three_clips, cache_dir, settings=blaze)
    assert report["reused"] == sorted(GOOD) and _mtimes(cache_dir) == before  # nothing rebuilt
    assert json.loads((cache_dir / "settings.json").read_text())["face_fallback"] == "blazeface"
    check_cache(cache_dir, blaze)
