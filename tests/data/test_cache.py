"""The clip cache (cfnsr/data/cache.py): entries written atomically, checked, and read back; damage is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cfnsr.data import cache
from cfnsr.data.cache import CacheError
from cfnsr.data.features import quantize_audio

STEM = "01-01-03-02-01-01-01"


def _write(cache_dir: Path, stem: str = STEM, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    mfcc = rng.standard_normal((13, 9)).astype(np.float32)
    audio, _ = quantize_audio(rng.uniform(-0.5, 0.5, 300))
    cache.write_entry(cache_dir, stem, frames, mfcc, {"source": f"{stem}.mp4"}, audio=audio)
    return frames, mfcc


def test_written_entry_verifies_and_loads_the_same_arrays(tmp_path: Path):
    frames, mfcc = _write(tmp_path)
    assert cache.cached_clips(tmp_path) == [STEM]
    assert cache.verify_entry(tmp_path, STEM, full=True) is None
    v, a = cache.load_clip(tmp_path, STEM)
    assert v.dtype == np.uint8 and a.dtype == np.float32
    np.testing.assert_array_equal(v, frames)
    np.testing.assert_array_equal(a, mfcc)
    meta = cache.load_meta(tmp_path, STEM)
    assert meta["source"] == f"{STEM}.mp4" and meta["format"] == cache.CACHE_FORMAT
    assert not [p for p in cache.clips_dir(tmp_path).iterdir() if p.name.startswith(".")]  # no temp left


def test_truncated_file_is_detected_and_named(tmp_path: Path):
    _write(tmp_path)
    path = cache.entry_dir(tmp_path, STEM) / "mfcc.npy"
    path.write_bytes(path.read_bytes()[:-7])
    reason = cache.verify_entry(tmp_path, STEM)
    assert reason is not None and "mfcc.npy" in reason and "truncated" in reason
    with pytest.raises(CacheError, match=rf"{STEM}.*mfcc\.npy"):
        cache.load_clip(tmp_path, STEM)


def test_same_size_corruption_needs_the_full_check(tmp_path: Path):
    _write(tmp_path)
    path = cache.entry_dir(tmp_path, STEM) / "frames.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert cache.verify_entry(tmp_path, STEM) is None  # cheap: sizes only
    assert "sha256" in cache.verify_entry(tmp_path, STEM, full=True)


def test_missing_entry_is_named(tmp_path: Path):
    _write(tmp_path)
    with pytest.raises(CacheError, match="no complete cache entry for 01-01-04"):
        cache.load_clip(tmp_path, "01-01-04-01-01-01-01")


def test_settings_mismatch_is_refused_with_the_differing_key(tmp_path: Path):
    cache.write_settings(tmp_path, {"frames": 8, "size": 32})
    cache.check_settings(tmp_path, {"frames": 8, "size": 32})
    recorded = json.loads((tmp_path / cache.SETTINGS_FILE).read_text())
    assert recorded["hash"] == cache.settings_hash({"size": 32, "frames": 8})  # key order does not matter
    with pytest.raises(CacheError, match="size"):
        cache.check_settings(tmp_path, {"frames": 8, "size": 64})


def test_temp_of_a_dead_writer_is_removed_and_a_live_ones_kept(tmp_path: Path):
    _write(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    final = cache.entry_dir(tmp_path, "01-01-05-01-01-01-01")
    stale = final.with_name(cache.host_tmp_path(final).name.replace(str(os.getpid()), str(dead_pid)))
    stale.mkdir()
    live = final.with_name(cache.host_tmp_path(final).name.replace(str(os.getpid()), str(os.getppid())))
    live.mkdir()
    assert cache.clean_stale_temps(tmp_path) == [stale.name]
    assert live.exists() and cache.cached_clips(tmp_path) == [STEM]


def test_another_hosts_temp_is_kept_while_it_is_written_to(tmp_path: Path):
    """A cache on a shared filesystem: a pid of another host says nothing here, so its age decides."""
    _write(tmp_path)
    final = cache.entry_dir(tmp_path, "01-01-05-01-01-01-01")
    # pid 1 exists on every Linux host and pid 999999999 on none: neither may decide for another machine
    busy = final.with_name(f".{final.name}.tmp-999999999@another-node")
    busy.mkdir()
    old = final.with_name(".01-01-05-01-01-02-01.tmp-1@another-node")
    old.mkdir()
    long_ago = time.time() - cache.STALE_TEMP_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    assert cache.clean_stale_temps(tmp_path) == [old.name]
    assert busy.exists()
    # a temp without a host (cfnsr.files temporaries, older code): left alone for a grace period, then removed
    hostless = final.with_name(f".{final.name}.tmp-999999999")
    hostless.mkdir()
    assert cache.clean_stale_temps(tmp_path) == []
    recent = time.time() - cache.HOSTLESS_GRACE_SECONDS - 5
    os.utime(hostless, (recent, recent))
    assert cache.clean_stale_temps(tmp_path) == [hostless.name]
