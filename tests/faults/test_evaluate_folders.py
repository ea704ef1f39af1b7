"""Two evaluations never share a folder, and a result names the checkpoint it measured.

Before: ``hydra.run.dir`` of evaluate.py had one-second resolution and no lock, so two evaluations started in the
same second wrote into one folder and one ``test.json`` was lost; ``test.json`` did not say which checkpoint it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from tests_helpers import CONF_DIR, compose_eval, compose_train

from cfnsr.conf_resolvers import register_resolvers
from cfnsr.runs.folder import JobLock, RunFolderError
from cfnsr.tasks.evaluate import evaluate
from cfnsr.tasks.train import train


def _hydra_dirs() -> tuple[str, str]:
    register_resolvers()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("evaluate", overrides=["ckpt_path=x.ckpt"], return_hydra_config=True)
        return str(cfg.hydra.run.dir), str(cfg.hydra.sweep.dir)


def test_evaluations_started_in_the_same_second_get_their_own_folders() -> None:
    first, second = _hydra_dirs(), _hydra_dirs()  # well within one second of each other
    assert first[0] != second[0] and first[1] != second[1]
    assert first[0].startswith("outputs/evaluate/runs/")


@pytest.fixture(scope="module")
def ckpt(tiny_data_dir: Path, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("run")
    return train(compose_train(["fusion=averaging", "measure_gflops=false", "trainer.max_epochs=1"], tiny_data_dir, out))


@pytest.mark.slow
def test_locked_or_used_evaluation_folder_is_refused(ckpt: dict, tmp_path: Path, tiny_data_dir: Path) -> None:
    out = tmp_path / "eval"
    cfg = compose_eval([f"ckpt_path={ckpt['best_ckpt']}"], out, tiny_data_dir)
    with JobLock(out), pytest.raises(RunFolderError, match="is being written by another job"):
        evaluate(cfg)  # another evaluation holds the folder
    assert not (out / "test.json").exists()
    record = evaluate(cfg)
    saved = json.loads((out / "test.json").read_text())
    assert saved["checkpoint"] == {"path": str(Path(ckpt["best_ckpt"]).resolve()), "run_id": ckpt["run_id"],
                                   "epoch": ckpt["best_epoch"]}
    assert saved["war"] == record["test"]["war"]
    before = (out / "test.json").read_bytes()
    with pytest.raises(RunFolderError, match=r"already holds evaluation\.json, test\.json of another evaluation"):
        evaluate(compose_eval([f"ckpt_path={ckpt['last_ckpt']}"], out, tiny_data_dir))
    assert (out / "test.json").read_bytes() == before  # the first result is kept
