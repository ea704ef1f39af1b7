"""A cache belongs to its corpus: entries are bound to their source files, the cache to the corpus it was built from.

Each test reproduces a case where an earlier cfnsr served a cache by clip name: another corpus with the same names
got the old corpus's clips (and evaluation printed the old corpus's number), a changed mp4 kept its old entry, a
clip removed from the corpus was still served, and the same recording under two names could sit in train and test.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cfnsr.data import cache as cache_mod
from cfnsr.data.cache import CacheError, load_meta
from cfnsr.data.datamodule import EmotionDataModule
from cfnsr.data.folds import Split
from cfnsr.data.prepare import prepare_corpus
from cfnsr.data.preprocess import default_corpus, preprocess_corpus
from cfnsr.data.settings import PreprocessSettings
from cfnsr.data.synthetic import generate_corpus

GEN = dict(actors=2, clips_per_actor=3, width=96, height=54, fps=10, duration=3.0)
SMALL = PreprocessSettings(frames=8, size=32)
SPLIT = Split(train_actors=(1,), val_actors=(2,), test_actors=(2,))


def _run(root: Path, cache: Path, **kwargs) -> dict:
    return preprocess_corpus(root, cache, SMALL, **{"workers": 0, "progress": False, **kwargs})


def _datamodule(root: Path, cache: Path) -> EmotionDataModule:
    return EmotionDataModule(root=root, cache_dir=cache, settings=SMALL, split=SPLIT, batch_size=2, augment=None,
                             allow_missing_clips=True, corpus=default_corpus(), eval_batch_size=None, num_workers=0, pin_memory=False, storage="mmap", seed=0)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Corpus A (seed 0) with its cache, and corpus B (seed 1): the same clip names, other recordings."""
    base = tmp_path_factory.mktemp("corpora")
    generate_corpus(base / "A", workers=0, progress=False, **GEN)
    generate_corpus(base / "B", workers=0, progress=False, seed=1, **GEN)
    _run(base / "A", base / "cacheA")
    return base / "A", base / "B", base / "cacheA"


@pytest.fixture
def built(corpora, tmp_path) -> tuple[Path, Path, Path]:
    a, b, cache = corpora
    shutil.copytree(a, tmp_path / "A")
    shutil.copytree(cache, tmp_path / "cacheA")
    # the copies keep sizes, mtimes and content: accepted at once, and the cache now names this root
    report = _run(tmp_path / "A", tmp_path / "cacheA")
    assert report["processed"] == [] and report["rebuilt"] == [] and not report.get("reidentified")
    return tmp_path / "A", b, tmp_path / "cacheA"


def _stems(root: Path) -> list[str]:
    return sorted(p.stem for p in root.glob("Actor_*/*.mp4"))


def test_same_names_other_corpus_differ_in_content(corpora):
    a, b, _ = corpora
    assert _stems(a) == _stems(b)
    assert all((a / p).read_bytes() != (b / p).read_bytes() for p in (x.relative_to(a) for x in a.glob("*/*.mp4")))


def test_another_corpus_with_the_same_clip_names_is_refused(built):
    a, b, cache = built
    before = {s: load_meta(cache, s)["files"]["frames.npy"]["sha256"] for s in cache_mod.cached_clips(cache)}
    with pytest.raises(CacheError) as err:
        _run(b, cache)
    text = str(err.value)
    assert str(cache) in text and f"data.root={b}" in text and "fingerprint" in text
    assert _stems(b)[0] in text  # names the differing clips
    # nothing was rebuilt or rebound: the cache still holds A's entries, bound to A's files
    assert {s: load_meta(cache, s)["files"]["frames.npy"]["sha256"] for s in cache_mod.cached_clips(cache)} == before
    # what evaluate.py data.root=B does: the task's prepare step (prepare_corpus), then the data module serves;
    # both refuse
    with pytest.raises(CacheError, match="fingerprint"):
        prepare_corpus(b, cache, SMALL, default_corpus(), workers=0, verbose=False)
    with pytest.raises(CacheError, match=r"not made from\s+the files now under data.root"):
        _datamodule(b, cache).setup("test")  # a process that skipped preparing never serves A's clips for B


def test_a_copy_of_the_corpus_is_accepted_without_a_rebuild(built, tmp_path):
    a, _, cache = built
    fingerprint = json.loads((cache / "corpus.json").read_text())["fingerprint"]
    copy = tmp_path / "moved"
    shutil.copytree(a, copy)
    for p in copy.rglob("*.mp4"):
        os.utime(p, (1_000_000, 1_000_000))  # a copy without preserved times: only the content hash can tell
    report = _run(copy, cache)
    assert report["rebuilt"] == [] and report["processed"] == []
    assert report["reidentified"] == _stems(a) and report["corpus_fingerprint"] == fingerprint
    again = _run(copy, cache)  # identities updated: the next run is a stat per file again
    assert again["reidentified"] == [] and again["reused"] == _stems(a)


def test_a_changed_mp4_gets_its_entry_rebuilt(built, corpora):
    a, b, cache = built
    stem = _stems(a)[0]
    rel = next(a.glob(f"*/{stem}.mp4")).relative_to(a)
    old = load_meta(cache, stem)
    old_fp = json.loads((cache / "corpus.json").read_text())["fingerprint"]
    shutil.copyfile(b / rel, a / rel)  # the same name, another recording
    report = _run(a, cache)
    assert [r["stem"] for r in report["rebuilt"]] == [stem] and "changed since the entry was made" in \
        report["rebuilt"][0]["reason"]
    new = load_meta(cache, stem)
    assert new["sources"]["mp4"]["sha256"] != old["sources"]["mp4"]["sha256"]
    assert new["files"]["frames.npy"]["sha256"] != old["files"]["frames.npy"]["sha256"]
    assert json.loads((cache / "corpus.json").read_text())["fingerprint"] != old_fp


def test_an_edit_that_keeps_size_and_mtime_is_found_by_verify_full(built):
    a, _, cache = built
    stem = _stems(a)[1]
    path = next(a.glob(f"*/{stem}.mp4"))
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _run(a, cache)["rebuilt"] == []  # the cheap check (size + mtime) cannot see it: documented limit
    assert [r["stem"] for r in _run(a, cache, verify="full")["rebuilt"]] == [stem]


def test_a_clip_removed_from_the_corpus_is_not_served(built):
    a, _, cache = built
    gone = _stems(a)[0]  # an actor-1 clip: training split
    next(a.glob(f"*/{gone}.mp4")).unlink()
    dm = _datamodule(a, cache)
    dm.setup("fit")
    served = {s for part in dm.datasets.values() for s in part.stems}
    assert gone not in served and served == set(_stems(a))
    assert (cache / "clips" / gone).is_dir()  # its entry stays (harmless), only never served


def test_a_duplicate_across_train_and_test_fails_the_run_naming_both(built):
    a, _, cache = built
    train_clip = next(a.glob("Actor_01/*.mp4"))
    test_clip = next(a.glob("Actor_02/*.mp4"))
    shutil.copyfile(train_clip, test_clip)  # the same recording under an actor-2 name
    report = _run(a, cache)
    groups = [d for d in report["duplicates"] if d["kind"] == "mp4"]
    assert [g["clips"] for g in groups] == [sorted([train_clip.stem, test_clip.stem])]
    dm = _datamodule(a, cache)
    with pytest.raises(CacheError) as err:
        dm.setup("fit")
    assert f"{train_clip.stem} (train) and {test_clip.stem} (test)" in str(err.value)
    assert dm.datasets == {}


def test_old_entries_without_source_identity_are_reidentified_here_and_refused_elsewhere(built, tmp_path):
    a, _, cache = built
    for stem in cache_mod.cached_clips(cache):  # what a cache written before this check looks like
        meta_path = cache / "clips" / stem / "meta.json"
        meta = json.loads(meta_path.read_text())
        del meta["sources"]
        meta_path.write_text(json.dumps(meta))
    (cache / "corpus.json").unlink()
    other = tmp_path / "elsewhere"
    shutil.copytree(a, other)
    shutil.copytree(cache, tmp_path / "cache2")
    with pytest.raises(CacheError, match="no source identity"):
        _datamodule(a, cache).setup("fit")  # never served unchecked
    report = _run(a, cache)  # the report names this root: hash and keep
    assert report["reidentified"] == _stems(a) and report["rebuilt"] == [] and report["processed"] == []
    # another root: nothing ties the old entries to these files, so the cache is refused like another corpus's
    with pytest.raises(CacheError, match=r"no source identity") as err:
        _run(other, tmp_path / "cache2")
    assert str(a) in str(err.value) and "data.cache_dir" in str(err.value)
    # without any recorded root (no report either) the old entries are rebuilt
    (tmp_path / "cache2" / "preprocess_report.json").unlink()
    report = _run(other, tmp_path / "cache2")
    assert sorted(r["stem"] for r in report["rebuilt"]) == _stems(a)
    assert all("no source identity" in r["reason"] for r in report["rebuilt"])


def test_the_data_module_never_writes_the_cache(corpora, tmp_path):
    """Making the cache is the task's prepare step (tests/tasks/test_prepare.py), on global rank 0 only; the data
    module reads: Lightning's prepare_data hook (which a trainer calls on rank 0) and setup write nothing."""
    a, _, _ = corpora
    cache = tmp_path / "cache"
    dm = _datamodule(a, cache)
    dm.prepare_data()
    assert not cache.exists()
    with pytest.raises(CacheError, match=str(cache)):
        dm.setup("fit")
    assert not cache.exists()


# ---------------------------------------------------------------- the corpus is part of what a run is
def _interrupted_run(data: Path, out: Path, monkeypatch) -> None:
    """A 2-epoch run that crashes at the start of its second epoch (as a kill would): last.ckpt holds epoch 0."""
    from tests_helpers import compose_train, interrupted_run


    interrupted_run(monkeypatch, compose_train([*RUN, "trainer.max_epochs=2"], data, out))


RUN = ["fusion=averaging", "measure_gflops=false", "fold=2"]


@pytest.mark.slow
def test_resume_on_another_corpus_is_refused_naming_the_fingerprint(tiny_data_dir, tmp_path, monkeypatch):
    import torch
    from tests_helpers import compose_train

    from cfnsr.runs.folder import RunFolderError
    from cfnsr.tasks.train import train

    run = tmp_path / "run"
    _interrupted_run(tiny_data_dir, run, monkeypatch)
    record = json.loads((run / "metrics.json").read_text())
    last = run / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)["cfnsr_corpus"]
    assert len(record["corpus_fingerprint"]) == 16 and saved["corpus_fingerprint"] == record["corpus_fingerprint"]
    assert saved["cache_dir"] == record["cache_dir"]

    other = tmp_path / "data"  # a copy of the data with one recording changed: another corpus, another cache
    shutil.copytree(tiny_data_dir, other)
    cfg = compose_train(RUN, other, tmp_path / "unused")
    clip = sorted(Path(cfg.data.root).glob("Actor_03/*.mp4"))[0]
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    clip.write_bytes(bytes(data))
    before = (run / "metrics.json").read_text()
    with pytest.raises(RunFolderError) as err:
        train(compose_train([*RUN, "trainer.max_epochs=2", f"ckpt_path={last}"], other, tmp_path / "launch"))
    text = str(err.value)
    assert f"corpus_fingerprint: {record['corpus_fingerprint']} vs " in text and "cache_dir: " in text
    assert (run / "metrics.json").read_text() == before  # refused before anything was written
    # the same corpus in another cache folder: only the cache differs, and it is named alone
    same = tmp_path / "same"
    shutil.copytree(tiny_data_dir, same)
    with pytest.raises(RunFolderError) as err:
        train(compose_train([*RUN, "trainer.max_epochs=2", f"ckpt_path={last}"], same, tmp_path / "launch2"))
    assert "cache_dir: " in str(err.value) and "corpus_fingerprint" not in str(err.value)
