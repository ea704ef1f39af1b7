"""From an empty folder: download RAVDESS-format zips from the loopback server -> preprocess -> train fold 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from loopback_server import serving, zip_bytes
from omegaconf import open_dict
from tests_helpers import CONF_DIR

from cfnsr.data.synthetic import generate_corpus
from cfnsr.download.run import download
from cfnsr.runs.record import read_record
from cfnsr.tasks.preprocess import preprocess
from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow
ACTORS = 6


def zenodo_zips(corpus: Path) -> tuple[dict[str, bytes], bytes]:
    """The generated corpus packed as the real records are: one zip per actor with ``Actor_XX/<clip>.mp4``, and one
    landmark zip with per-actor folders of CSVs."""
    videos = {f"Video_Speech_Actor_{a:02d}.zip": zip_bytes({f"Actor_{a:02d}/{p.name}": p.read_bytes()
                                                            for p in sorted((corpus / f"Actor_{a:02d}").glob("*.mp4"))})
              for a in range(1, ACTORS + 1)}
    csvs = {f"Actor_{p.stem[-2:]}/{p.name}": p.read_bytes() for p in sorted((corpus / "landmarks").glob("*.csv"))}
    return videos, zip_bytes(csvs)


def test_download_then_preprocess_then_train_fold_1(tmp_path: Path, capsys):
    corpus = generate_corpus(tmp_path / "generated", workers=2, progress=False, actors=ACTORS, width=160, height=90,
                             fps=10, duration=3.1, clips_per_actor=8)
    videos, landmarks = zenodo_zips(corpus)
    root = tmp_path / "empty" / "RAVDESS"
    with serving() as srv:
        srv.add_zenodo_record(1188976, videos)
        srv.add_zenodo_record(3255102, {"FacialTracking_Actors_01-24.zip": landmarks})
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            dl = compose("download", overrides=["data=ravdess", f"data.root={root}", f"download.mirror={srv.url}",
                                                 f"download.sources.videos.count={ACTORS}", "download.reserve_gib=0"])
        download(dl)
    assert len(list(root.glob("Actor_*/*.mp4"))) == ACTORS * 8 == len(list((root / "landmarks").glob("*.csv")))

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=ravdess", f"data.root={root}", "data.frames=8", "data.size=32", "data.num_workers=0",
            "data.pin_memory=false", "data.storage=memory", "data.batch_size=8", "data.eval_batch_size=8",
            "folds.test_actors=[[1,2],[3,4],[5,6]]", "backbone=tiny", "trainer.max_epochs=1", "preprocess.workers=0",
            "trainer.enable_progress_bar=false", f"paths.output_dir={tmp_path / 'run'}", "fold=1",
            "data.allow_missing_clips=true"])  # RAVDESS expects 24 actors x 60 clips; this corpus has 6 x 8
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    report = preprocess(cfg)
    assert report is not None and not list(Path(cfg.data.cache_dir).glob("**/.*.tmp-*"))
    result = train(cfg)
    rec = read_record(result["run_dir"])
    assert rec["status"] == "finished" and rec["epochs"] == 1
    assert rec["test_actors"] == [1, 2] and rec["test"]["n"] == 16  # 2 actors x 8 clips, all downloaded
