"""The CREMA-D and folder corpus classes on generated files (FLV/WAV written with PyAV, CSVs written here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cfnsr.data.corpus import CorpusError
from cfnsr.data.cremad import CremadCorpus, CremadNameError, parse_name
from cfnsr.data.folder_corpus import FolderCorpus, csv_class_names
from cfnsr.data.media import decode_clip
from cfnsr.data.media_wav import decode_audio_file
from cfnsr.data.synthetic_cremad import generate_cremad

NAMES = ["anger", "disgust", "fear", "happy", "neutral", "sad"]


@pytest.fixture(scope="module")
def cremad_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cremad")
    generate_cremad(root, actors=[1001, 1050])  # 12 clips; clip 5 and 10 are cut to 2 s, clip 11 is a voice tie
    return root


def test_cremad_names():
    assert parse_name("VideoFlash/1091_IEO_SAD_HI.flv") == (1091, "IEO", 5, "HI")
    for bad, why in (("1000_DFA_ANG_XX", "actor 1000"), ("1001_DFA_XXX_XX", "emotion XXX"),
                     ("1001_DFA_ANG_ZZ", "level ZZ"), ("01-01-03-01-01-01-01", "expected <actor>")):
        with pytest.raises(CremadNameError, match=why):
            parse_name(bad)


def test_flv_video_and_its_audio_track_decode_like_the_wav(cremad_root: Path):
    clip = decode_clip(cremad_root / "VideoFlash" / "1001_DFA_ANG_XX.flv", 8, 16000)
    wav = decode_audio_file(cremad_root / "AudioWAV" / "1001_DFA_ANG_XX.wav", 16000)
    assert clip.frames.shape == (8, 72, 128, 3) and clip.fps == pytest.approx(10)
    assert clip.duration == pytest.approx(3.0, abs=0.1) and abs(len(wav) / 16000 - 3.0) < 0.01
    # the FLV's MP3 track is the WAV's voice, delayed by the MP3 encoder (tens of ms): find the lag, then compare
    a, b = clip.audio.astype(np.float64), wav.astype(np.float64)
    corr = max(np.corrcoef(a[lag:lag + 30000], b[:30000])[0, 1] for lag in range(0, 2000, 8))
    assert corr > 0.9
    assert float(np.abs(clip.frames.astype(int) - clip.frames[0].astype(int)).max()) > 10  # a moving face


@pytest.mark.parametrize("label_source,audio_source", [("acted", "video"), ("voice", "wav")])
def test_cremad_labels_speakers_and_audio(cremad_root: Path, label_source: str, audio_source: str):
    corpus = CremadCorpus(class_names=NAMES, label_source=label_source, audio_source=audio_source)
    clips, skipped, found = corpus.discover(cremad_root)
    assert found == 12 and {c.speaker for c in clips} == {1001, 1050}
    by_stem = {c.stem: c for c in clips}
    assert by_stem["1001_DFA_FEA_XX"].label == NAMES.index("fear")
    assert all((c.audio is not None) == (audio_source == "wav") for c in clips)
    if label_source == "acted":
        assert len(clips) == 12 and not skipped
        assert by_stem["1050_DFA_ANG_XX"].label == 0  # clip 7: the raters heard DIS, acted ANG
    else:
        # clip 7 (1050_DFA_ANG_XX) was heard as the next emotion; clip 11 (1050_DFA_NEU_XX) is a tie: skipped
        assert by_stem["1050_DFA_ANG_XX"].label == NAMES.index("disgust")
        assert [s["kind"] for s in skipped] == ["no-label"] and "tied" in skipped[0]["reason"]
        assert len(clips) == 11


def test_cremad_refuses_what_it_cannot_use(tmp_path: Path, cremad_root: Path):
    with pytest.raises(CorpusError, match="no VideoFlash/ folder"):
        CremadCorpus(class_names=NAMES, label_source="acted", audio_source="video").discover(tmp_path)
    with pytest.raises(CorpusError, match="label_source='crowd'"):
        CremadCorpus(class_names=NAMES, label_source="crowd", audio_source="video")
    with pytest.raises(CorpusError, match="do not match the CREMA-D emotion label codes"):
        CremadCorpus(class_names=sorted(NAMES, reverse=True), label_source="acted", audio_source="video")
    (tmp_path / "VideoFlash").mkdir()
    (tmp_path / "VideoFlash" / "1001_DFA_ANG_XX.flv").write_bytes(b"x")
    with pytest.raises(CorpusError, match="summaryTable.csv: cannot read"):
        CremadCorpus(class_names=NAMES, label_source="face", audio_source="video").discover(tmp_path)


def _folder(tmp_path: Path, rows: list[str]) -> FolderCorpus:
    (tmp_path / "a").mkdir(exist_ok=True)
    for name in ("x.mp4", "y.mp4"):
        (tmp_path / "a" / name).write_bytes(b"video")
    (tmp_path / "clips.csv").write_text("\n".join(["path,label,speaker", *rows]) + "\n")
    names = csv_class_names(tmp_path / "clips.csv")
    return FolderCorpus(class_names=names, csv=str(tmp_path / "clips.csv"), root=str(tmp_path))


def test_folder_corpus_reads_its_csv(tmp_path: Path):
    corpus = _folder(tmp_path, ["a/x.mp4,sad,bob", "a/y.mp4,glad,7", "a/gone.mp4,glad,bob"])
    assert corpus.class_names == ("glad", "sad")
    clips, skipped, _ = corpus.discover(tmp_path)
    assert [(c.stem, c.label, c.speaker) for c in clips] == [("a__x", 1, "bob"), ("a__y", 0, 7)]
    assert skipped[0]["kind"] == "missing" and "clips.csv, line 4: a/gone.mp4 does not exist" in skipped[0]["reason"]
    assert corpus.speakers() == [7, "bob"]
    assert corpus.expected_stems([7]) == {7: ["a__y"]}


@pytest.mark.parametrize("rows,message", [
    (["a/x.mp4,sad,bob", "a/x.mp4,sad,bob"], r"line 3: a/x.mp4 is the same clip as line 2"),
    (["a/x.mp4,sad,"], r"line 2: empty speaker"),
    (["a/x.mp4,sad,bob,extra"], r"line 2: more values than the header"),
])
def test_folder_corpus_errors_name_the_csv_line(tmp_path: Path, rows: list[str], message: str):
    with pytest.raises(CorpusError, match=message):
        _folder(tmp_path, rows).discover(tmp_path)


def test_folder_corpus_refuses_a_label_outside_the_class_names(tmp_path: Path):
    _folder(tmp_path, ["a/x.mp4,sad,bob", "a/y.mp4,angry,bob"])
    corpus = FolderCorpus(class_names=["sad", "glad"], csv=str(tmp_path / "clips.csv"), root=str(tmp_path))
    with pytest.raises(CorpusError, match=r"clips.csv, line 3: label 'angry' is not one of the class names"):
        corpus.discover(tmp_path)
    (tmp_path / "clips.csv").write_text("file,label,speaker\na/x.mp4,sad,bob\n")
    with pytest.raises(CorpusError, match=r"line 1: missing column\(s\) \['path'\]"):
        corpus.discover(tmp_path)
