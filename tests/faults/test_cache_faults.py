"""Fault injection on the corpus and the preprocessed cache.

Each test breaks something the way real runs break it (a generator killed mid-way, a truncated or bit-flipped cache
file, a short landmark CSV, stray files, a SIGKILLed preprocessing run) and checks that the next run notices, says
which file and why, and repairs what it can without redoing what is fine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # tests/data/media_factory.py
from media_factory import make_clip_with_csv, write_clip  # noqa: E402

from cfnsr.data import cache as cache_mod  # noqa: E402
from cfnsr.data import preprocess as preprocess_mod  # noqa: E402
from cfnsr.data.cache import CacheError, cached_clips, load_clip, load_meta  # noqa: E402
from cfnsr.data.prepare import prepare_corpus  # noqa: E402
from cfnsr.data.preprocess import preprocess_corpus  # noqa: E402
from cfnsr.data.settings import PreprocessSettings, check_cache  # noqa: E402
from cfnsr.data.synthetic import generate_corpus, make_config, selected_names  # noqa: E402

GEN = dict(actors=2, clips_per_actor=3, width=96, height=54, fps=10, duration=3.0)
SMALL = PreprocessSettings(frames=8, size=32)
TINY = dict(width=160, height=90, fps=10, duration=3.2)


def _prepare(root: Path, cache: Path, **kwargs) -> dict:
    return prepare_corpus(root, cache, SMALL, generate=dict(GEN), workers=0, verbose=False, **kwargs)


def _run(root: Path, cache: Path, settings: PreprocessSettings = SMALL, **kwargs) -> dict:
    return preprocess_corpus(root, cache, settings, **{"workers": 0, "progress": False, **kwargs})


def _all_stems() -> list[str]:
    return sorted(n.stem for n in selected_names(make_config(**GEN)))


@pytest.fixture(scope="module")
def synthetic_built(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny synthetic corpus, generated and preprocessed once; tests work on copies (``built``)."""
    base = tmp_path_factory.mktemp("synthetic")
    root, cache = base / "corpus", base / "cache"
    _prepare(root, cache)
    return root, cache


@pytest.fixture
def built(synthetic_built, tmp_path) -> tuple[Path, Path]:
    root, cache = synthetic_built
    shutil.copytree(root, tmp_path / "corpus")
    shutil.copytree(cache, tmp_path / "cache")
    return tmp_path / "corpus", tmp_path / "cache"


# ---------------------------------------------------------------------------------------------------------------
# 1. an interrupted synthetic generation is completed
# ---------------------------------------------------------------------------------------------------------------

def test_interrupted_generation_is_completed_by_prepare(tmp_path):
    root, cache = tmp_path / "corpus", tmp_path / "cache"
    generate_corpus(root, workers=0, progress=False, **GEN)
    # what a generator killed half-way leaves: one actor's clips missing, no synthetic.json (written last)
    victims = sorted((root / "Actor_02").glob("*.mp4"))
    assert victims
    for p in victims:
        p.unlink()
    (root / "synthetic.json").unlink()
    report = _prepare(root, cache)
    assert all(p.is_file() for p in victims)
    assert (root / "synthetic.json").is_file()
    assert cached_clips(cache) == _all_stems() and report["counts"]["usable"] == len(_all_stems())


# ---------------------------------------------------------------------------------------------------------------
# 2. cache entries carry integrity facts; broken entries are named, refused and rebuilt
# ---------------------------------------------------------------------------------------------------------------

def test_entry_meta_records_format_and_file_facts(built):
    _, cache = built
    stem = cached_clips(cache)[0]
    meta = load_meta(cache, stem)
    assert meta["format"] == cache_mod.CACHE_FORMAT
    arrays = (*load_clip(cache, stem, mmap=False), np.load(cache / "clips" / stem / "audio.npy"))
    for name, arr in zip(("frames.npy", "mfcc.npy", "audio.npy"), arrays, strict=True):
        facts = meta["files"][name]
        path = cache / "clips" / stem / name
        assert facts["bytes"] == path.stat().st_size
        assert facts["shape"] == list(arr.shape) and facts["dtype"] == str(arr.dtype)
        import hashlib
        assert facts["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cache_mod.verify_entry(cache, stem) is None and cache_mod.verify_entry(cache, stem, full=True) is None


def test_a_cache_of_the_old_format_is_refused_with_the_rebuild_hint(built):
    _, cache = built
    assert cache_mod.CACHE_FORMAT >= 3
    record = json.loads((cache / "settings.json").read_text())
    record["format"] = 2  # before audio.npy
    (cache / "settings.json").write_text(json.dumps(record))
    with pytest.raises(CacheError, match=r"(?s)format: cache 2, requested \d+.*audio\.npy.*preprocess\.force=true"):
        check_cache(cache, SMALL)


def test_an_entry_without_audio_npy_is_named_by_load_audio_and_rebuilt_by_a_rerun(built):
    root, cache = built
    stem = cached_clips(cache)[0]
    good = cache_mod.load_audio(cache, stem)
    (cache / "clips" / stem / "audio.npy").unlink()
    assert stem not in cached_clips(cache)
    assert "audio.npy is missing" in cache_mod.verify_entry(cache, stem)
    with pytest.raises(CacheError, match=rf"(?s){stem}.*audio\.npy is missing.*preprocess\.force=true"):
        cache_mod.load_audio(cache, stem)
    report = _run(root, cache)
    assert [r["stem"] for r in report["rebuilt"]] == [stem] and "audio.npy" in report["rebuilt"][0]["reason"]
    np.testing.assert_array_equal(cache_mod.load_audio(cache, stem), good)


def test_truncated_frames_are_named_by_load_clip_and_rebuilt_by_a_rerun(built):
    root, cache = built
    stem = cached_clips(cache)[1]
    frames = cache / "clips" / stem / "frames.npy"
    good = np.load(frames)
    frames.write_bytes(frames.read_bytes()[:-500])
    for mmap in (True, False):
        with pytest.raises(CacheError, match=stem) as info:
            load_clip(cache, stem, mmap=mmap)
        assert "frames.npy" in str(info.value) and str(cache / "clips" / stem) in str(info.value)
    reason = cache_mod.verify_entry(cache, stem)
    assert reason is not None and "frames.npy" in reason
    report = _run(root, cache)
    assert [r["stem"] for r in report["rebuilt"]] == [stem]
    assert "frames.npy" in report["rebuilt"][0]["reason"]
    assert report["processed"] == [stem] and stem not in report["reused"]
    np.testing.assert_array_equal(load_clip(cache, stem)[0], good)
    assert cache_mod.verify_entry(cache, stem, full=True) is None


def test_nan_in_mfcc_is_found_by_full_verification(built):
    root, cache = built
    stem = cached_clips(cache)[2]
    mfcc = cache / "clips" / stem / "mfcc.npy"
    good = np.load(mfcc)
    data = bytearray(mfcc.read_bytes())
    data[-4:] = np.float32(np.nan).tobytes()  # same size, only the content differs
    mfcc.write_bytes(bytes(data))
    assert cache_mod.verify_entry(cache, stem) is None  # the cheap facts still hold
    reason = cache_mod.verify_entry(cache, stem, full=True)
    assert reason is not None and "mfcc.npy" in reason and "sha256" in reason
    report = _run(root, cache, verify="full")
    assert [r["stem"] for r in report["rebuilt"]] == [stem] and "sha256" in report["rebuilt"][0]["reason"]
    fixed = load_clip(cache, stem)[1]
    assert np.isfinite(fixed).all()
    np.testing.assert_array_equal(fixed, good)


def test_load_clip_names_the_entry_for_meta_and_shape_faults(built):
    _, cache = built
    stems = cached_clips(cache)
    # meta that does not parse
    meta_path = cache / "clips" / stems[0] / "meta.json"
    meta_path.write_text("{ not json")
    with pytest.raises(CacheError, match=f"{stems[0]}.*meta.json"):
        load_clip(cache, stems[0])
    assert "meta.json" in cache_mod.verify_entry(cache, stems[0])
    # a file whose header disagrees with the facts of meta.json (same byte size: reshaped in place)
    entry = cache / "clips" / stems[1]
    arr = np.load(entry / "mfcc.npy")
    np.save(entry / "mfcc.npy", arr.reshape(arr.shape[1], arr.shape[0]))
    with pytest.raises(CacheError, match=f"{stems[1]}.*mfcc.npy.*shape"):
        load_clip(cache, stems[1])
    # an entry of the old format (no format/file facts in meta.json)
    meta = json.loads((cache / "clips" / stems[2] / "meta.json").read_text())
    del meta["format"]
    (cache / "clips" / stems[2] / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CacheError, match=f"{stems[2]}.*format"):
        load_clip(cache, stems[2])


# ---------------------------------------------------------------------------------------------------------------
# 3. a re-run on a complete corpus writes nothing
# ---------------------------------------------------------------------------------------------------------------

def _snapshot(*tops: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(top, relative path) -> (size, mtime_ns) of every file and directory, the tops included."""
    snap = {}
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [".", *dirnames, *filenames]:
                p = Path(dirpath) / name if name != "." else Path(dirpath)
                st = p.stat()
                snap[(top.name, p.relative_to(top).as_posix())] = (st.st_size, st.st_mtime_ns)
    return snap


def test_rerun_on_a_complete_corpus_writes_nothing(built):
    root, cache = built
    _prepare(root, cache)  # the copy moved the corpus: this run may record the new paths
    before = _snapshot(root, cache)
    time.sleep(0.02)
    report = _prepare(root, cache)
    assert report["counts"]["processed"] == 0 and report["counts"]["reused"] == len(_all_stems())
    assert _snapshot(root, cache) == before


# ---------------------------------------------------------------------------------------------------------------
# 4. a landmark CSV must cover the clip
# ---------------------------------------------------------------------------------------------------------------

def _truncate_csv(path: Path, rows: int, drop: tuple[str, ...] = ()) -> None:
    lines = path.read_text().splitlines()
    header = [c.strip() for c in lines[0].split(",")]
    keep = [i for i, c in enumerate(header) if c not in drop]
    out = [", ".join(header[i] for i in keep)]
    for line in lines[1:rows + 1]:
        cells = line.split(",")
        out.append(",".join(cells[i] for i in keep))
    path.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("drop", [(), ("timestamp",), ("timestamp", "frame")], ids=["timestamps", "frames", "rows"])
def test_a_landmark_csv_that_does_not_cover_the_clip_is_reported(tmp_path, drop):
    root = tmp_path / "corpus"
    short, fine = "01-01-03-01-01-01-01", "01-01-03-01-01-02-01"
    make_clip_with_csv(root, short, **TINY)
    make_clip_with_csv(root, fine, **TINY)
    _truncate_csv(root / "landmarks" / f"{short}.csv", 3, drop)
    _truncate_csv(root / "landmarks" / f"{fine}.csv", 32, drop)

    report = _run(root, tmp_path / "cache")
    assert report["processed"] == sorted([fine, short])
    (mismatch,) = report["landmarks_mismatch"]
    assert mismatch["file"] == f"landmarks/{short}.csv" and mismatch["kind"] == "landmarks-mismatch"
    assert "3 rows" in mismatch["reason"] and "32 frames" in mismatch["reason"] and "detector" in mismatch["action"]
    assert report["fallback_detector"] == [short]
    assert load_meta(tmp_path / "cache", short)["face_source"] in ("detector", "center")
    assert load_meta(tmp_path / "cache", fine)["face_source"] == "landmarks"

    strict = PreprocessSettings(frames=8, size=32, landmark_mismatch="skip")
    report = _run(root, tmp_path / "strict", settings=strict)
    assert report["processed"] == [fine]
    (skip,) = report["skipped"]
    assert skip["kind"] == "landmarks-mismatch" and f"{short}.csv" in skip["reason"] and "3 rows" in skip["reason"]


# ---------------------------------------------------------------------------------------------------------------
# 5. stray files are reported
# ---------------------------------------------------------------------------------------------------------------

def test_files_that_are_not_clips_are_reported(tmp_path):
    root = tmp_path / "corpus"
    make_clip_with_csv(root, "01-01-03-01-01-01-01", **TINY)
    make_clip_with_csv(root, "01-01-03-01-01-02-01", csv_layout="actor", **TINY)  # CSV beside the mp4: not stray
    (root / "Actor_01" / "notes.txt").write_text("recorded on a Tuesday\n")
    write_clip(root / "Actor_01" / "holiday.mp4", **TINY)
    report = _run(root, tmp_path / "cache")
    stray = {s["file"]: s for s in report["not_a_clip"]}
    assert set(stray) == {"Actor_01/notes.txt", "Actor_01/holiday.mp4"}
    assert all(s["kind"] == "not-a-clip" and s["reason"] for s in stray.values())
    assert "holiday.mp4" in stray["Actor_01/holiday.mp4"]["reason"] and "notes.txt" in stray["Actor_01/notes.txt"]["reason"]
    assert report["counts"]["not_a_clip"] == 2
    assert json.loads((tmp_path / "cache" / "preprocess_report.json").read_text())["not_a_clip"] == report["not_a_clip"]


# ---------------------------------------------------------------------------------------------------------------
# 6. pool workers die with their parent
# ---------------------------------------------------------------------------------------------------------------

def _marked(marker: bytes) -> dict[int, int]:
    """pid -> parent pid of every live process whose environment holds ``marker``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if marker not in env.split(b"\0"):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            found[int(entry)] = int(fields[1])
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_pool_workers_die_with_a_killed_parent(tmp_path):
    root = tmp_path / "corpus"
    for e in range(2, 8):
        make_clip_with_csv(root, f"01-01-0{e}-01-01-01-01", width=320, height=180, fps=15, duration=3.2)
    key = f"CFNSR_FAULT_TEST_{uuid.uuid4().hex}"
    marker = f"{key}=1".encode()
    code = ("from cfnsr.data.preprocess import preprocess_corpus\nfrom cfnsr.data.settings import PreprocessSettings\n"
            f"preprocess_corpus({str(root)!r}, {str(tmp_path / 'cache')!r}, PreprocessSettings(frames=8, size=32), "
            "workers=2, progress=False)\n")
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, key: "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        workers: list[int] = []
        while time.monotonic() < deadline and child.poll() is None:
            procs = _marked(marker)
            workers = [p for p, pp in procs.items() if pp != child.pid and pp in procs]
            if len(workers) >= 2:
                break
            time.sleep(0.02)
        assert len(workers) >= 2 and child.poll() is None, "no pool workers seen while the run was going"
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 10
        while _marked(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _marked(marker) == {}, "processes of the killed run are still alive"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pid in _marked(marker):  # only processes started by this test carry the marker
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------------------------------------------
# 7. resuming costs little: failed clips are not retried unless their files changed
# ---------------------------------------------------------------------------------------------------------------

def test_failed_clips_are_retried_only_when_their_files_change(tmp_path, monkeypatch):
    root, cache = tmp_path / "corpus", tmp_path / "cache"
    good = ["01-01-03-01-01-01-01", "01-01-03-01-01-02-01"]
    for stem in good:
        make_clip_with_csv(root, stem, **TINY)
    zero = make_clip_with_csv(root, "01-01-04-01-01-01-01", **TINY)
    zero.write_bytes(b"")
    cut = make_clip_with_csv(root, "01-01-04-01-01-02-01", **TINY)
    cut.write_bytes(cut.read_bytes()[:20000])
    make_clip_with_csv(root, "01-01-05-01-01-01-01", **TINY)
    bad_csv = root / "landmarks" / "01-01-05-01-01-01-01.csv"
    bad_csv.write_bytes(b"\xff\xfe\x00garbage")
    failed = sorted(["Actor_01/01-01-04-01-01-01-01.mp4", "Actor_01/01-01-04-01-01-02-01.mp4",
                     "Actor_01/01-01-05-01-01-01-01.mp4"])

    first = _run(root, cache)
    assert first["processed"] == good and sorted(s["file"] for s in first["skipped"]) == failed
    for s in first["skipped"]:
        st = (root / s["file"]).stat()
        assert (s["size"], s["mtime_ns"]) == (st.st_size, st.st_mtime_ns)

    calls: list[str] = []
    real = preprocess_mod.process_clip

    def counting(job):
        calls.append(job.rel)
        return real(job)

    monkeypatch.setattr(preprocess_mod, "process_clip", counting)
    again = _run(root, cache)
    assert calls == []
    assert sorted(s["file"] for s in again["skipped"]) == failed
    assert {s["file"]: s["reason"] for s in again["skipped"]} == {s["file"]: s["reason"] for s in first["skipped"]}

    os.utime(cut, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: retried
    bad_csv.write_bytes(b"\xff\xfe\x00garbage, more garbage")  # its CSV changed: retried
    _run(root, cache)
    assert sorted(calls) == ["Actor_01/01-01-04-01-01-02-01.mp4", "Actor_01/01-01-05-01-01-01-01.mp4"]
    calls.clear()
    _run(root, cache)
    assert calls == []
    _run(root, cache, retry_failed=True)
    assert sorted(calls) == failed


def test_nothing_to_do_starts_no_pool(built, monkeypatch):
    root, cache = built
    _run(root, cache)

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started with nothing to do")

    monkeypatch.setattr(preprocess_mod, "process_pool", no_pool)
    report = _run(root, cache, workers=2)
    assert report["counts"]["processed"] == 0


# ---------------------------------------------------------------------------------------------------------------
# 8. corrupt packets reported by the decoder are recorded
# ---------------------------------------------------------------------------------------------------------------

def test_corrupt_packet_counts_go_to_meta_and_report(tmp_path, monkeypatch):
    root, cache = tmp_path / "corpus", tmp_path / "cache"
    stems = ["01-01-03-01-01-01-01", "01-01-03-01-01-02-01"]
    for stem in stems:
        make_clip_with_csv(root, stem, **TINY)
    real = preprocess_mod.decode_clip

    def decode(path, *args, **kwargs):
        clip = real(path, *args, **kwargs)
        if Path(path).stem == stems[0]:  # the decoder's counts, as cfnsr.data.media will set them
            for name, value in (("corrupt_packets", 3), ("corrupt_video_packets", 2), ("corrupt_audio_packets", 1)):
                object.__setattr__(clip, name, value)
        return clip

    monkeypatch.setattr(preprocess_mod, "decode_clip", decode)
    report = _run(root, cache)
    meta = load_meta(cache, stems[0])
    assert (meta["corrupt_packets"], meta["corrupt_video_packets"], meta["corrupt_audio_packets"]) == (3, 2, 1)
    assert load_meta(cache, stems[1])["corrupt_packets"] == 0
    assert report["counts"]["corrupt_packets"] == 1
    assert [c["stem"] for c in report["corrupt_packets"]] == [stems[0]]
    again = _run(root, cache)  # reused entries are counted from their meta.json
    assert again["counts"]["corrupt_packets"] == 1
