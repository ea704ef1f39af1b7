"""Initialisation cannot leak test actors: every checkpoint that initialises a run is checked against its split.

Before: ``init.weights`` took any checkpoint (one trained on this run's test actors gave a calm, inflated
number); ``init.from_runs`` matched stage-1 runs by the fold number written in their record and took whatever
file its ``best_ckpt`` named; checkpoints did not record their actors at all.

The tiny corpus has folds [[1, 2], [3, 4], [5, 6]]; under the clean protocol fold k validates on fold k+1's actors,
so the fold-2 source run below trained on actors 1, 2 (and 7..24, which the tiny corpus lacks), selected on 5, 6 and
tested on 3, 4.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tests_helpers import compose_train

from cfnsr.tasks.train import train

pytestmark = pytest.mark.slow
FAST = ["fusion=averaging", "measure_gflops=false", "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def source(tiny_data_dir: Path, tmp_path_factory) -> dict:
    return train(compose_train([*FAST, "fold=2"], tiny_data_dir, tmp_path_factory.mktemp("source")))


def test_checkpoints_and_records_carry_the_split(source):
    ckpt = torch.load(source["best_ckpt"], weights_only=True)
    # Training actors are every RAVDESS actor (1..24) outside the test and validation blocks; the tiny corpus has 1..6.
    train_actors = [1, 2, *range(7, 25)]
    assert ckpt["cfnsr_split"] == {"train_actors": train_actors, "val_actors": [5, 6], "test_actors": [3, 4]}
    assert source["train_actors"] == train_actors


def test_weights_trained_on_this_runs_test_actors_are_refused(source, tiny_data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"init\.weights=.*trained on actors \[1, 2\], which this run tests on"):
        train(compose_train([*FAST, "fold=1", f"init.weights={source['best_ckpt']}"], tiny_data_dir,
                            tmp_path / "fold1"))
    # fold 3 tests 5, 6 (the source selected its epoch on them) and validates on 1, 2 (the source trained on them)
    with pytest.raises(ValueError, match=r"(?s)trained on actors \[1, 2\], which this run validates on.*"
                                         r"selected on actors \[5, 6\], which this run tests on"):
        train(compose_train([*FAST, "fold=3", f"init.weights={source['best_ckpt']}"], tiny_data_dir,
                            tmp_path / "fold3"))


def test_same_split_is_accepted_and_its_provenance_recorded(source, tiny_data_dir, tmp_path):
    record = train(compose_train([*FAST, "fold=2", f"init.weights={source['best_ckpt']}"], tiny_data_dir,
                                 tmp_path / "again"))
    assert record["status"] == "finished"
    init = record["init_sources"]["weights"]
    assert init["run_id"] == source["run_id"] and init["recipe_hash"] == source["recipe_hash"]
    assert init["split_recorded"] is True


def test_a_checkpoint_without_a_recorded_split_needs_the_opt_in(source, tiny_data_dir, tmp_path):
    ckpt = torch.load(source["best_ckpt"], weights_only=True)
    del ckpt["cfnsr_split"]  # as written before checkpoints carried their split
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    with pytest.raises(ValueError, match=r"does not record which actors.*init\.allow_unknown_split=true"):
        train(compose_train([*FAST, "fold=2", f"init.weights={old}"], tiny_data_dir, tmp_path / "refused"))
    record = train(compose_train([*FAST, "fold=2", f"init.weights={old}", "init.allow_unknown_split=true"],
                                 tiny_data_dir, tmp_path / "accepted"))
    assert record["status"] == "finished" and record["init_sources"]["weights"]["split_recorded"] is False


def _stage1(source: dict, sweep: Path, **edits: dict) -> None:
    """Copies of the source run folder as a video_only and an audio_only stage-1 run, records edited per stream."""
    for fusion in ("video_only", "audio_only"):
        run = sweep / fusion
        shutil.copytree(source["run_dir"], run)
        rec = json.loads((run / "metrics.json").read_text())
        rec.update(fusion=fusion, run_dir=str(run), **edits.get(fusion, {}))
        (run / "metrics.json").write_text(json.dumps(rec))


def test_from_runs_matches_actor_sets_not_fold_numbers(source, tiny_data_dir, tmp_path):
    # The records claim fold 1, but their runs tested on actors 3, 4 and trained on 1, 2 (fold 1's test actors).
    sweep = tmp_path / "stage1"
    _stage1(source, sweep, video_only={"fold": 1}, audio_only={"fold": 1})
    with pytest.raises(FileNotFoundError, match=r"no finished video_only run tested on actors \[1, 2\]"):
        train(compose_train([*FAST, "fold=1", f"init.from_runs={sweep}"], tiny_data_dir, tmp_path / "s2"))


def test_from_runs_takes_only_the_runs_own_checkpoint(source, tiny_data_dir, tmp_path):
    sweep = tmp_path / "stage1"
    _stage1(source, sweep, audio_only={"run_id": "forged"})  # a record naming a checkpoint of another run
    with pytest.raises(ValueError, match=r"carries run '[0-9a-f]+', not this record's run 'forged'"):
        train(compose_train([*FAST, "fold=2", f"init.from_runs={sweep}"], tiny_data_dir, tmp_path / "s2"))
