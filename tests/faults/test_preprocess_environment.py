"""Preprocessing when the machine fails rather than a clip: a full disk stops the run with a non-zero status and
marks no clip; a worker process that dies names its clip, which is marked and not retried forever, while the other
clips' entries survive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from disk_helpers import grow, small_disk  # noqa: E402
from media_factory import make_clip_with_csv  # noqa: E402

from cfnsr.data.cache import REPORT_FILE, cached_clips  # noqa: E402
from cfnsr.data.preprocess import KILL_WORKER_ENV, EnvironmentProblem, preprocess_corpus  # noqa: E402
from cfnsr.data.settings import PreprocessSettings  # noqa: E402

SMALL = PreprocessSettings(frames=8, size=32)
TINY = dict(width=160, height=90, fps=10, duration=3.2)
ROOT = Path(__file__).resolve().parents[2]


def _corpus(root: Path, n: int) -> list[str]:
    stems = [f"01-01-0{2 + k % 6}-01-01-0{1 + k // 6}-01" for k in range(n)]
    for stem in stems:
        make_clip_with_csv(root, stem, **TINY)
    return stems


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("ravdess")
    return root, _corpus(root, 6)


def test_a_full_disk_stops_preprocessing_and_marks_no_clip(corpus, tmp_path: Path):
    root, stems = corpus
    # room for settings.json and about two of the six entries (~100 KiB each)
    with small_disk(tmp_path / "disk", "260k") as disk:
        cache = disk / "cache"
        with pytest.raises(EnvironmentProblem) as err:
            preprocess_corpus(root, cache, SMALL, workers=2, progress=False)
        message = str(err.value)
        # before: no error at all; 4 of 6 clips "skipped" as kind "error" ("unexpected OSError: [Errno 28] ...")
        assert "ENOSPC" in message and f"{cache}/clips/" in message and f"file system of {disk}" in message
        assert "MiB free" in message and "re-run to resume" in message
        report = cache / REPORT_FILE
        assert not report.exists() or not json.loads(report.read_text())["skipped"]
        assert not [p for p in (cache / "clips").iterdir() if ".tmp-" in p.name]  # no temporary entry left
        done = set(cached_clips(cache))
        assert len(done) < len(stems)

        # the disk freed: the same command builds everything, nothing is "not retried"
        grow(disk, "8m")
        again = preprocess_corpus(root, cache, SMALL, workers=2, progress=False)
        assert sorted(again["reused"]) == sorted(done)
        assert again["counts"]["usable"] == len(stems) and again["counts"]["not_retried"] == 0
        assert not again["skipped"]


def test_the_command_exits_non_zero_on_a_full_disk(corpus, tmp_path: Path):
    root, _ = corpus
    with small_disk(tmp_path / "disk", "150k") as disk:
        cache = disk / "cache"
        done = subprocess.run(
            [sys.executable, "preprocess.py", "data=ravdess", f"data.root={root}", f"data.cache_dir={cache}",
             "preprocess.frames=8", "preprocess.size=32", "preprocess.workers=2", f"hydra.run.dir={tmp_path / 'h'}"],
            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        # before: exit 0, every clip but the first recorded as failed
        assert done.returncode == 2, done.stderr[-3000:]
        last = done.stderr.strip().splitlines()[-1]
        assert "ENOSPC" in last and f"{cache}/" in last and "file system of" in last


def test_a_worker_killed_by_a_signal_names_its_clip_and_the_others_survive(corpus, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    root, stems = corpus
    victim = stems[2]
    monkeypatch.setenv(KILL_WORKER_ENV, f"{victim}.mp4")
    cache = tmp_path / "cache"
    report = preprocess_corpus(root, cache, SMALL, workers=2, progress=False)
    # before: PreprocessError "a preprocessing worker process died (out of memory?)", no clip named, and every
    # re-run died the same way
    (died,) = report["skipped"]
    assert died["kind"] == "worker-died" and died["file"].endswith(f"{victim}.mp4")
    assert "SIGKILL" in died["reason"] and victim in died["reason"]
    assert sorted(cached_clips(cache)) == sorted(s for s in stems if s != victim)

    # the next run does not retry it (its file did not change), so it does not die again
    again = preprocess_corpus(root, cache, SMALL, workers=2, progress=False)
    assert again["not_retried"] == [died["file"]] and again["skipped"] == report["skipped"]
    # once the cause is gone, retry_failed builds it
    monkeypatch.delenv(KILL_WORKER_ENV)
    fixed = preprocess_corpus(root, cache, SMALL, workers=2, progress=False, retry_failed=True)
    assert fixed["processed"] == [victim] and not fixed["skipped"]
