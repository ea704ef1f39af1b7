"""From an empty folder, the three real commands on CREMA-D: ``download.py`` from a loopback server shaped like the
release's GitHub repository (git-lfs media) -> ``preprocess.py`` -> ``train.py`` fold 1 -> ``python -m cfnsr.report``.

The corpus is the synthetic CREMA-D-format one (real FLV + WAV + ratings table), published in the release's layout.
A fast test checks the crowd-label path on the downloaded layout: ``data=cremad`` composes the download source and
the corpus class, and the corpus reads its labels from the ratings table the downloader brought. A corpus without
a download source gets the downloader's own message, not a Hydra composition error."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from loopback_server import serving
from tests_helpers import CONF_DIR

from cfnsr.data.corpus import Corpus
from cfnsr.data.synthetic_cremad import generate_cremad
from cfnsr.download.run import download
from cfnsr.runs.record import read_record

REPO = Path(__file__).resolve().parents[2]
OWNER, REPO_NAME, REF = "CheyneyComputerScience", "CREMA-D", "master"
# kfold k=5 over CREMA-D's 91 actors: fold 1 tests 1001-1019, validates on 1020-1037; 1040 trains
ACTORS = [1001, 1002, 1020, 1040]
CLASS_NAMES = ["anger", "disgust", "fear", "happy", "neutral", "sad"]
TINY = ["data.frames=4", "data.size=32", "data.num_workers=0", "data.pin_memory=false", "data.storage=memory",
        "data.batch_size=8", "data.eval_batch_size=8", "preprocess.workers=0"]


def release(corpus: Path) -> tuple[dict[str, bytes], set[str]]:
    """The generated corpus as the release's repository holds it: media in git-lfs, tables as plain git blobs, and
    files the downloader must leave alone (AudioMP3, README)."""
    files = {p.relative_to(corpus).as_posix(): p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file()}
    stems = [p.stem for p in sorted((corpus / "VideoFlash").glob("*.flv"))]
    # the release's per-emotion vote counts (its first columns); the corpus reads summaryTable.csv, not this file
    files["processedResults/tabulatedVotes.csv"] = ('"","A","D","F","H","N","S","fileName"\n' + "".join(
        f'"{i}",1,0,0,0,0,0,"{s}"\n' for i, s in enumerate(stems, start=1))).encode()
    files.update({f"AudioMP3/{s}.mp3": b"not selected" for s in stems})
    files["README.md"] = b"# CREMA-D\n"
    return files, {p for p in files if p.endswith((".flv", ".wav", ".mp3"))}


def run(*args: str, cwd: Path) -> str:
    """``python <args>`` (a script of the checkout, or ``-m <module>``), as a user types it; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{args[:2]} exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_download_then_preprocess_then_train_fold_1_then_report(tmp_path: Path):
    stems = generate_cremad(tmp_path / "generated", actors=ACTORS, width=64, height=48, fps=10, duration=3.0)
    files, lfs = release(tmp_path / "generated")
    root = tmp_path / "empty" / "CREMA-D"
    work = tmp_path / "work"
    work.mkdir()
    logs = f"paths.log_dir={work / 'outputs'}"
    with serving() as srv:
        srv.add_github_repo(OWNER, REPO_NAME, REF, files, lfs)
        out = run(str(REPO / "download.py"), "data=cremad", f"data.root={root}", f"download.mirror={srv.url}",
                  "download.reserve_gib=0", logs, cwd=work)
    assert "Open Database License" in out and f"python preprocess.py data=cremad data.root={root}" in out
    for rel in [f"VideoFlash/{s}.flv" for s in stems] + [f"AudioWAV/{s}.wav" for s in stems] + [
            "processedResults/summaryTable.csv", "processedResults/tabulatedVotes.csv"]:
        assert (root / rel).read_bytes() == files[rel], rel
    assert not (root / "AudioMP3").exists() and not (root / "README.md").exists()

    run(str(REPO / "preprocess.py"), "data=cremad", f"data.root={root}", *TINY, logs, cwd=work)
    cache = Path(f"{root}_cache")
    report = json.loads((cache / "preprocess_report.json").read_text())
    assert report["counts"]["usable"] == len(stems) and report["counts"]["skipped_by_kind"] == {}

    run_dir = work / "run"
    run(str(REPO / "train.py"), "data=cremad", f"data.root={root}", "fold=1", "backbone=tiny", "fusion=concat_fc",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "measure_gflops=false", *TINY, logs,
        f"hydra.run.dir={run_dir}", cwd=work)
    rec = read_record(run_dir)
    fold1 = [s for s in stems if 1001 <= int(s[:4]) <= 1019]
    assert rec["status"] == "finished" and rec["dataset"] == "cremad" and rec["class_names"] == CLASS_NAMES
    assert rec["paper"] is None  # the paper's RAVDESS accuracies are never quoted beside CREMA-D runs
    assert rec["test_actors"] == list(range(1001, 1020)) and rec["test"]["n"] == len(fold1) == 12
    assert (rec["fold_scheme"]["name"], rec["fold_scheme"]["k"]) == ("kfold", 5)

    run("-m", "cfnsr.report", str(run_dir), "--out", str(tmp_path / "report"), cwd=work)
    with open(tmp_path / "report" / "report.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    assert (row["dataset"], row["fusion"], row["n_runs"], row["folds"]) == ("cremad", "concat_fc", "1", "1")
    assert float(row["war_fold_1"]) == pytest.approx(100 * rec["test"]["war"], abs=1e-3)


def test_downloaded_layout_gives_the_crowd_majority_label_and_hides_the_state_folder(tmp_path: Path):
    from test_download_cremad import CLIPS  # 3 tiny FLV + WAV clips, git-lfs media
    from test_download_cremad import release as tiny_release

    files, lfs = tiny_release()
    # summaryTable.csv as the release writes it (R write.csv); MultiModalVote disagrees with the acted emotion for
    # 1001_DFA_ANG_XX (D: disgust) and ties for 1002_IEO_HAP_HI
    files["processedResults/summaryTable.csv"] = (
        b'"","FileName","VoiceVote","VoiceLevel","FaceVote","FaceLevel","MultiModalVote","MultiModalLevel"\n'
        b'"1","1001_DFA_ANG_XX","A","50","A","60","D","70"\n"2","1002_IEO_HAP_HI","H","50","H","60","H:N","70"\n'
        b'"3","1091_TSI_SAD_XX","S","50","S","60","S","70"\n')
    root = tmp_path / "CREMA-D"
    with serving() as srv:
        srv.add_github_repo(OWNER, REPO_NAME, REF, files, lfs)
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("download", overrides=["data=cremad", f"data.root={root}", f"download.mirror={srv.url}",
                                                 "download.backoff=0", "download.reserve_gib=0",
                                                 "data.corpus.label_source=multimodal"])
        download(cfg, out=lambda *_: None)
    assert (root / ".download").is_dir()  # the downloader's state, inside the corpus root
    (root / ".download" / "VideoFlash").mkdir()  # e.g. a kept partial file: never a clip
    (root / ".download" / "VideoFlash" / f"{CLIPS[0]}.flv").write_bytes(files[f"VideoFlash/{CLIPS[0]}.flv"])
    corpus = instantiate(cfg.data.corpus)
    assert isinstance(corpus, Corpus)
    clips, skipped, n_found = corpus.discover(root)
    assert n_found == 3
    assert {c.stem: (c.label, c.speaker) for c in clips} == {"1001_DFA_ANG_XX": (1, 1001), "1091_TSI_SAD_XX": (5, 1091)}
    assert all(c.rel.startswith("VideoFlash/") for c in clips)
    (skip,) = skipped
    assert skip["kind"] == "no-label" and "1002_IEO_HAP_HI" in skip["file"] and "tied" in skip["reason"]


@pytest.mark.parametrize("corpus", ["folder", "synthetic"])
def test_a_corpus_without_a_download_source_gets_the_downloaders_own_message(corpus: str, tmp_path: Path, capsys):
    from cfnsr.download.run import main

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("download", overrides=[f"data={corpus}", f"data.root={tmp_path}"])  # no conf/download/<corpus>
    with pytest.raises(SystemExit) as exit_info:
        main(cfg)
    assert exit_info.value.code == 2
    assert f"download.py: no download source for data={corpus}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
