"""Shared fixtures: a small synthetic corpus made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_helpers import compose_train

from cfnsr.conf_resolvers import register_resolvers

# The test session is an entry point too: the tests compose configs (tests_helpers.compose_*) and resolve them.
register_resolvers()


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the tiny synthetic corpus and its cache, prepared once for the session."""
    from cfnsr.builders.objects import preprocess_settings
    from cfnsr.data.prepare import prepare_corpus

    data_dir = tmp_path_factory.mktemp("data")
    cfg = compose_train([], data_dir=data_dir, output_dir=data_dir / "unused")
    prepare_corpus(cfg.data.root, cfg.data.cache_dir, preprocess_settings(cfg), generate=dict(cfg.data.generate),
                   workers=2, verbose=False)
    return data_dir


@pytest.fixture(scope="session")
def late_ckpt(tiny_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Averaging (late fusion) trained for one epoch on the tiny corpus (8 frames of 32x32, audio 0.5 + 2.45 s): the
    checkpoint the predict tests read, trained once per session."""
    from cfnsr.tasks.train import train

    out = tmp_path_factory.mktemp("late")
    record = train(compose_train(["fusion=averaging", "trainer.max_epochs=1", "measure_gflops=false", "logger=csv"],
                                 tiny_data_dir, out))
    return Path(record["best_ckpt"])
