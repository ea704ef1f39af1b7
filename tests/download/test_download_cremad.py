"""``python download.py data=cremad``: against a loopback server shaped like GitHub (git-trees API, raw files with
git-lfs pointers, media host), serving a couple of real tiny FLV and WAV files in CREMA-D's layout."""

from __future__ import annotations

import hashlib
import io
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from loopback_server import Server, serving
from omegaconf import open_dict
from tests_helpers import CONF_DIR

from cfnsr.download.github_lfs import parse_pointer
from cfnsr.download.http import DownloadError
from cfnsr.download.run import download

OWNER, REPO, REF = "CheyneyComputerScience", "CREMA-D", "master"
CLIPS = ["1001_DFA_ANG_XX", "1002_IEO_HAP_HI", "1091_TSI_SAD_XX"]


def tiny_flv(seed: int) -> bytes:
    """A 5-frame 64x48 FLV (FLV1 video + MP3 audio, as the release's VideoFlash files) written with PyAV."""
    buf = io.BytesIO()
    audio_codec = "libmp3lame" if "libmp3lame" in av.codecs_available else "aac"
    with av.open(buf, "w", format="flv") as c:
        v = c.add_stream("flv", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream(audio_codec, rate=22050)
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (seed * 50 + i * 30) % 256, np.uint8),
                                               format="rgb24")
            for p in v.encode(frame):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        samples = (0.1 * np.sin(np.arange(11025) / (5 + seed))).astype(np.float32)[None]
        af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        af.sample_rate = 22050
        for p in [*a.encode(af), *a.encode()]:
            c.mux(p)
    return buf.getvalue()


def tiny_wav(seed: int) -> bytes:
    """0.3 s of 16 kHz mono 16-bit PCM, as the release's AudioWAV files."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((3000 * np.sin(np.arange(4800) / (3 + seed))).astype("<i2").tobytes())
    return buf.getvalue()


def release() -> tuple[dict[str, bytes], set[str]]:
    files: dict[str, bytes] = {}
    for i, clip in enumerate(CLIPS):
        files[f"VideoFlash/{clip}.flv"] = tiny_flv(i)
        files[f"AudioWAV/{clip}.wav"] = tiny_wav(i)
        files[f"AudioMP3/{clip}.mp3"] = b"not selected"
    files["processedResults/summaryTable.csv"] = b'"","FileName","VoiceVote"\n"1","1001_DFA_ANG_XX","A"\n'
    files["processedResults/tabulatedVotes.csv"] = b'"A","fileName"\n3,"1001_DFA_ANG_XX"\n'
    files["README.md"] = b"# CREMA-D\n"
    lfs = {p for p in files if p.endswith((".flv", ".wav", ".mp3"))}
    return files, lfs


def config(root: Path, srv: Server, *overrides: str):
    # data=cremad (conf/data/cremad.yaml) comes with the corpus seam; the downloader needs data.name and data.root.
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("download", overrides=["download=cremad", f"download.mirror={srv.url}", "download.backoff=0",
                                              "download.reserve_gib=0", *overrides])
    with open_dict(cfg):
        cfg.data = {"name": "cremad", "root": str(root)}
    return cfg


def test_release_layout_checked_by_lfs_oid_and_git_blob_id_and_a_rerun_makes_no_request(tmp_path: Path, capsys):
    files, lfs = release()
    with serving() as srv:
        srv.add_github_repo(OWNER, REPO, REF, files, lfs)
        download(config(tmp_path, srv))
        assert "Open Database License" in capsys.readouterr().out
        got = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if ".download" not in p.parts
                     and p.is_file())
        wanted = sorted([f"VideoFlash/{c}.flv" for c in CLIPS] + [f"AudioWAV/{c}.wav" for c in CLIPS]
                        + ["processedResults/summaryTable.csv", "processedResults/tabulatedVotes.csv"])
        assert got == wanted
        for path in wanted:
            assert (tmp_path / path).read_bytes() == files[path]
        with av.open(str(tmp_path / "VideoFlash" / f"{CLIPS[0]}.flv")) as c:  # a real FLV with its audio track
            assert sorted(s.type for s in c.streams) == ["audio", "video"]
        media = f"/media/{OWNER}/{REPO}/{REF}/VideoFlash/{CLIPS[0]}.flv"
        assert len(srv.requests_for(media)) == 1  # LFS media from the media host
        assert len(srv.requests_for(f"/{OWNER}/{REPO}/{REF}/processedResults/summaryTable.csv")) == 2  # probe + file
        assert srv.requests_for(f"/{OWNER}/{REPO}/{REF}/AudioMP3/{CLIPS[0]}.mp3") == []

        srv.log.clear()
        download(config(tmp_path, srv))
        assert srv.log == []

        # One WAV lost: the tree and that file again; pointers are remembered by blob id, not fetched again.
        (tmp_path / "AudioWAV" / f"{CLIPS[1]}.wav").unlink()
        download(config(tmp_path, srv))
        assert sorted({r.path for r in srv.log}) == [f"/media/{OWNER}/{REPO}/{REF}/AudioWAV/{CLIPS[1]}.wav",
                                                     f"/repos/{OWNER}/{REPO}/git/trees/{REF}"]


def test_media_not_matching_its_lfs_oid_is_named(tmp_path: Path):
    files, lfs = release()
    with serving() as srv:
        srv.add_github_repo(OWNER, REPO, REF, files, lfs)
        bad = f"/media/{OWNER}/{REPO}/{REF}/AudioWAV/{CLIPS[2]}.wav"
        srv.faults.corrupt[bad] = 2
        with pytest.raises(DownloadError, match=rf"checksum mismatch for AudioWAV/{CLIPS[2]}\.wav twice.*sha256"):
            download(config(tmp_path, srv))
        assert len(srv.requests_for(bad)) == 2 and not (tmp_path / "AudioWAV" / f"{CLIPS[2]}.wav").exists()


def test_a_missing_release_folder_is_an_error_naming_the_pattern(tmp_path: Path):
    files, lfs = release()
    del files["processedResults/summaryTable.csv"]
    with serving() as srv:
        srv.add_github_repo(OWNER, REPO, REF, files, lfs)
        with pytest.raises(DownloadError, match="no file matches include pattern 'processedResults/summaryTable.csv'"):
            download(config(tmp_path, srv))


def test_lfs_pointer_parsing():
    oid = hashlib.sha256(b"x").hexdigest()
    text = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 1\n".encode()
    assert parse_pointer(text, "p") == (oid, 1)
    assert parse_pointer(b"RIFF....WAVE", "p") is None and parse_pointer(b"\xff\xfe", "p") is None
    with pytest.raises(DownloadError, match="p: a git-lfs pointer without"):
        parse_pointer(b"version https://git-lfs.github.com/spec/v1\nsize 1\n", "p")
