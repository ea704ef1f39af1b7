"""The rules a search and a tuned run are held to, checked without training."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from tests_helpers import require_module

from cfnsr.builders.config_checks import ConfigError, check_train_config, check_tuned_fold
from cfnsr.models.fusion.registry import fusion_registry

CONF = str(Path(__file__).resolve().parents[2] / "conf")


def _cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("train", overrides=overrides)


def test_the_search_config_selects_the_search_protocol_and_a_resumable_study():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=optuna", "fusion=msaf", "fold=2"], return_hydra_config=True)
    assert cfg.protocol.name == "search" and cfg.protocol.objective == "val/war" and not cfg.test_after_fit
    assert cfg.search.study == "demo-msaf-paper-fold2"
    sweeper = cfg.hydra.sweeper
    assert sweeper.direction == "maximize" and sweeper.sampler._target_.endswith("TPESampler")
    assert sweeper.storage.startswith("sqlite:///") and sweeper.storage.endswith("/optuna.db")
    assert "now" not in str(cfg.hydra.sweep.dir)  # fixed folder: the same command finds its study again
    assert {"fusion.model.block_channel_divisor", "fusion.model.reduction"} <= set(cfg.search.fusion_space.msaf)


@pytest.mark.parametrize("fusion", list(fusion_registry()))
def test_every_fusion_space_names_settings_of_that_fusion(fusion: str):
    cfg = _cfg(["hparams_search=optuna", f"fusion={fusion}"])
    for key in cfg.search.fusion_space.get(fusion) or {}:  # none: the shared space only
        assert key.startswith(("fusion.model.", "backbone.")), key
        parent, leaf = key.rsplit(".", 1)
        from omegaconf import OmegaConf

        assert leaf in OmegaConf.select(cfg, parent), f"{fusion}: {key} is not a setting of this fusion"


def test_a_search_may_not_tune_the_split_the_method_or_the_seed():
    require_module("hydra_plugins.hydra_optuna_sweeper", "optuna")
    from cfnsr.search.sweeper import _forbidden

    for key in ("fold", "seed", "fusion", "protocol", "folds.test_actors", "search.trial", "hparams.trial",
                "+fold", "test_after_fit", "experiment"):
        assert _forbidden(key), key
    for key in ("optimizer.lr", "fusion.model.num_heads", "backbone.audio.dropout2", "data.batch_size"):
        assert not _forbidden(key), key


def test_a_search_trial_never_tests():
    cfg = _cfg(["protocol=search"])
    with pytest.raises(ConfigError, match="never evaluates the test fold"):
        check_train_config(cfg)
    check_train_config(_cfg(["hparams_search=optuna"]))


def test_tuned_settings_are_refused_on_other_test_actors():
    cfg = _cfg(["fold=2"])
    with open_dict(cfg):
        cfg.hparams = {"chosen_by": "study s", "outer_fold": 1, "test_actors": [1, 2, 3, 4]}
    with pytest.raises(ConfigError, match=r"fold=2 tests actors \[5, 6, 7, 8\].*except \[1, 2, 3, 4\]"):
        check_tuned_fold(cfg)
    cfg.fold = 1
    check_tuned_fold(cfg)


def test_a_trial_left_running_by_a_dead_search_is_failed_and_replaced(tmp_path: Path):
    optuna = require_module("optuna", "optuna")
    require_module("hydra_plugins.hydra_optuna_sweeper", "optuna")
    import socket
    import subprocess
    import sys

    from cfnsr.search.study import INTERRUPTED_ATTR
    from cfnsr.search.sweeper import OWNER_ATTR, TrialSweeperImpl

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    done = study.ask()
    study.tell(done, 0.5)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan, alive = study.ask(), study.ask()
    orphan.set_user_attr(OWNER_ATTR, f"{socket.gethostname()}:{int(dead.stdout)}")
    alive.set_user_attr(OWNER_ATTR, f"{socket.gethostname()}:{__import__('os').getpid()}")  # a search still running
    sweeper = TrialSweeperImpl(None, "maximize", url, "s", 3, 1, 1.0, None, None, None)
    sweeper._fail_orphans(study)
    states = {t.number: (t.state.name, t.user_attrs.get(INTERRUPTED_ATTR)) for t in study.trials}
    assert states == {0: ("COMPLETE", None), 1: ("FAIL", True), 2: ("RUNNING", None)}


def test_a_search_on_the_wrong_protocol_is_refused_before_any_trial(tmp_path: Path):
    require_module("hydra_plugins.hydra_optuna_sweeper", "optuna")
    import subprocess
    import sys

    root = Path(CONF).parent
    done = subprocess.run([sys.executable, str(root / "train.py"), "hparams_search=optuna", "protocol=clean",
                           f"paths.log_dir={tmp_path}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "under protocol=clean fold k validates on another fold's test actors" in out
    assert "Launching" not in out and not list(tmp_path.rglob("optuna.db"))  # no study, no trial
