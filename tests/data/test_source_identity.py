"""Source identities through the corpus seam: the files each entry is bound to are the ones the corpus class
discovered (CREMA-D's FLV and, with audio_source=wav, its WAV; a folder corpus's videos), not parsed names."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from cfnsr.data.cache import CacheError, load_meta
from cfnsr.data.cremad import CODE_NAMES, CremadCorpus
from cfnsr.data.datamodule import EmotionDataModule
from cfnsr.data.folder_corpus import FolderCorpus
from cfnsr.data.folds import Split
from cfnsr.data.preprocess import preprocess_corpus
from cfnsr.data.settings import PreprocessSettings
from cfnsr.data.source_identity import corpus_fingerprint, fingerprint
from cfnsr.data.synthetic_cremad import generate_cremad

# CREMA-D's window starts at 0 and pads short tracks (conf/data/cremad.yaml)
SMALL = PreprocessSettings(frames=4, size=32, audio_offset=0.0, short_audio="pad")


def _cremad(audio_source: str) -> CremadCorpus:
    return CremadCorpus(class_names=CODE_NAMES, label_source="acted", audio_source=audio_source)


@pytest.fixture(scope="module")
def cremad_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cremad") / "CREMA-D"
    generate_cremad(root, actors=[1001, 1002], width=64, height=36, short_every=0)
    return root


def _run(root: Path, cache: Path, corpus) -> dict:
    return preprocess_corpus(root, cache, SMALL, corpus, workers=0, progress=False)


def test_cremad_wav_is_a_source_and_a_changed_wav_rebuilds_its_entry(cremad_root: Path, tmp_path: Path):
    root = tmp_path / "CREMA-D"
    shutil.copytree(cremad_root, root)
    cache = tmp_path / "cache"
    corpus = _cremad("wav")
    first = _run(root, cache, corpus)
    stems = sorted(first["processed"])
    assert len(stems) == 12
    sources = load_meta(cache, stems[0])["sources"]
    assert sources["mp4"]["file"] == f"VideoFlash/{stems[0]}.flv"
    assert sources["audio"]["file"] == f"AudioWAV/{stems[0]}.wav" and len(sources["audio"]["sha256"]) == 64
    assert first["corpus_fingerprint"] == corpus_fingerprint(root, corpus, cache)

    # another voice under the same name: only the entry made from that WAV is rebuilt, and the corpus differs
    wav = root / "AudioWAV" / f"{stems[0]}.wav"
    wav.write_bytes((root / "AudioWAV" / f"{stems[1]}.wav").read_bytes())
    # the data module refuses the stale entry before preprocessing ran again
    split = Split(train_actors=(1001,), val_actors=(1002,), test_actors=(1002,))
    dm = EmotionDataModule(root=root, cache_dir=cache, settings=SMALL, split=split, batch_size=2, augment=None,
                           corpus=corpus, eval_batch_size=None, num_workers=0, pin_memory=False, storage="mmap", seed=0, allow_missing_clips=False)
    with pytest.raises(CacheError, match=f"not made from the files now under data.root.*{stems[0]}"):
        dm.setup("fit")
    second = _run(root, cache, corpus)
    assert [r["stem"] for r in second["rebuilt"]] == [stems[0]]
    assert f"AudioWAV/{stems[0]}.wav changed since the entry was made" in second["rebuilt"][0]["reason"]
    assert second["corpus_fingerprint"] != first["corpus_fingerprint"]
    assert load_meta(cache, stems[0])["sources"]["audio"]["sha256"] == \
        load_meta(cache, stems[1])["sources"]["audio"]["sha256"]
    dm.setup("fit")  # rebuilt: served again
    assert len(dm.datasets["train"]) == 6


def test_cremad_with_the_video_track_has_no_audio_source_and_a_wav_change_is_not_its_concern(
        cremad_root: Path, tmp_path: Path):
    root = tmp_path / "CREMA-D"
    shutil.copytree(cremad_root, root)
    cache = tmp_path / "cache"
    first = _run(root, cache, _cremad("video"))
    stem = sorted(first["processed"])[0]
    assert load_meta(cache, stem)["sources"]["audio"] is None
    (root / "AudioWAV" / f"{stem}.wav").write_bytes(b"not read by this corpus")
    second = _run(root, cache, _cremad("video"))
    assert second["rebuilt"] == [] and second["corpus_fingerprint"] == first["corpus_fingerprint"]
    # the same cache read through the WAVs: its entries were not made from them, and the cache is this root's
    third = _run(root, cache, _cremad("wav"))
    assert {r["stem"] for r in third["rebuilt"]} == set(first["processed"]) and third["reused"] == []
    assert stem not in third["processed"] and len(third["processed"]) == 11  # its WAV is not audio
    assert all("a separate audio file was added" in r["reason"] for r in third["rebuilt"])


def test_a_folder_corpus_fingerprint_follows_its_videos_not_their_names(cremad_root: Path, tmp_path: Path):
    videos = tmp_path / "mine"
    (videos / "clips").mkdir(parents=True)
    rows = [["path", "label", "speaker"]]
    for i, flv in enumerate(sorted((cremad_root / "VideoFlash").glob("*.flv"))[:4]):
        shutil.copy(flv, videos / "clips" / f"take{i}.flv")
        rows.append([f"clips/take{i}.flv", "a" if i % 2 else "b", "ann" if i < 2 else "ben"])
    with open(videos / "clips.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    corpus = FolderCorpus(class_names=["a", "b"], csv=str(videos / "clips.csv"), root=str(videos))
    report = _run(videos, tmp_path / "cache", corpus)
    assert load_meta(tmp_path / "cache", "clips__take0")["sources"]["mp4"]["file"] == "clips/take0.flv"
    before = report["corpus_fingerprint"]
    assert corpus_fingerprint(videos, corpus) == before
    # the same names, other content: another corpus
    shutil.copy(videos / "clips" / "take1.flv", videos / "clips" / "take0.flv")
    assert corpus_fingerprint(videos, corpus) != before


def test_entries_recorded_before_the_audio_kind_keep_their_fingerprint():
    """Sources recorded without an ``audio`` key (RAVDESS caches from before CREMA-D) fingerprint as an explicit
    None does, so a corpus.json written then still matches."""
    mp4 = {"file": "Actor_01/a.mp4", "size": 10, "mtime_ns": 1, "sha256": "ab" * 32}
    old = {"a": {"mp4": mp4, "landmark_csv": None}}
    new = {"a": {"mp4": mp4, "landmark_csv": None, "audio": None}}
    wav = {"a": {"mp4": mp4, "landmark_csv": None, "audio": {**mp4, "file": "AudioWAV/a.wav"}}}
    assert fingerprint(old) == fingerprint(new) != fingerprint(wav)
