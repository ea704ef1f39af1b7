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
    # the journal file in the sweep folder, no database; the sweeper and every trial job open the same one
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)  # what Hydra does before the sweeper and each job resolve ${hydra:...}
    assert sweeper._target_ == "hydra_plugins.cfnsr_search.trial_sweeper.TrialSweeper"
    from cfnsr.runs.study_storage import study_storage

    report = cfg.callbacks.trial_report
    assert sweeper.storage is None and cfg.search.storage is None and report.storage is None
    assert report.sweep_dir == cfg.hydra.sweep.dir and report.pruner is None
    assert study_storage(None, report.sweep_dir) == f"{cfg.hydra.sweep.dir}/optuna.journal"
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
    require_module("optuna", "optuna")
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


def test_a_trial_left_running_by_a_dead_worker_is_failed_and_replaced(tmp_path: Path):
    optuna = require_module("optuna", "optuna")
    import os
    import socket
    import subprocess
    import sys
    import time

    from cfnsr.runs.study_storage import open_storage
    from cfnsr.search.study import INTERRUPTED_ATTR
    from cfnsr.search.sweeper import HEARTBEAT_ATTR, OWNER_ATTR, STALE_S, counted_trials, fail_orphans

    study = optuna.create_study(study_name="s", storage=open_storage(str(tmp_path / "optuna.journal")),
                                direction="maximize")
    done = study.ask()
    study.tell(done, 0.5)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = socket.gethostname()
    orphan, alive, remote_live, remote_silent = study.ask(), study.ask(), study.ask(), study.ask()
    orphan.set_user_attr(OWNER_ATTR, f"{here}:{int(dead.stdout)}")
    alive.set_user_attr(OWNER_ATTR, f"{here}:{os.getpid()}")  # a worker still running
    remote_live.set_user_attr(OWNER_ATTR, "other-node:1")
    remote_live.set_user_attr(HEARTBEAT_ATTR, time.time())
    remote_silent.set_user_attr(OWNER_ATTR, "other-node:2")
    remote_silent.set_user_attr(HEARTBEAT_ATTR, time.time() - STALE_S - 1)
    assert [t.number for t in counted_trials(study)] == [0, 2, 3]  # dead owners do not count
    assert fail_orphans(study) == [1, 4]
    states = {t.number: (t.state.name, t.user_attrs.get(INTERRUPTED_ATTR)) for t in study.trials}
    assert states == {0: ("COMPLETE", None), 1: ("FAIL", True), 2: ("RUNNING", None), 3: ("RUNNING", None),
                      4: ("FAIL", True)}
    assert [t.number for t in counted_trials(study)] == [0, 2, 3]


def test_the_search_space_in_hydra_syntax_becomes_optuna_distributions():
    require_module("optuna", "optuna")
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from cfnsr.search.space import override_value, parse_space
    from cfnsr.search.study import SearchError

    params = {"optimizer.lr": "tag(log, interval(1e-5, 1e-2))", "data.batch_size": "choice(8, 16, 32)",
              "fusion.model.num_layers": "range(1, 6)", "optimizer.weight_decay": "interval(0.0, 0.1)"}
    space, fixed = parse_space(params, ["optimizer.weight_decay=1e-4", "fusion.model.ratio=tag(int, interval(2, 8))"])
    assert space == {"optimizer.lr": FloatDistribution(1e-5, 1e-2, log=True),
                     "data.batch_size": CategoricalDistribution([8, 16, 32]),
                     "fusion.model.num_layers": IntDistribution(1, 5),
                     "fusion.model.ratio": IntDistribution(2, 8)}
    assert fixed == ["optimizer.weight_decay=1e-4"]  # the command line fixes a searched key
    with pytest.raises(SearchError, match="tag\\(log"):
        parse_space({"data.batch_size": "tag(log, choice(8, 16))"}, [])
    # a sampled value goes back through Hydra's parser as the same value and type
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for value in (1.2345e-05, 16, "adam", "1e-3", True):
        (o,) = OverridesParser.create().parse_overrides([f"k={override_value(value)}"])
        assert o.value() == value and type(o.value()) is type(value), value


def test_a_search_on_the_wrong_protocol_is_refused_before_any_trial(tmp_path: Path):
    require_module("optuna", "optuna")
    import subprocess
    import sys

    root = Path(CONF).parent
    done = subprocess.run([sys.executable, str(root / "train.py"), "hparams_search=optuna", "protocol=clean",
                           f"paths.log_dir={tmp_path}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "under protocol=clean fold k validates on another fold's test actors" in out
    assert "Launching" not in out and not list(tmp_path.rglob("optuna.journal"))  # no study, no trial


@pytest.mark.parametrize("choice, cls", [("median", "MedianPruner"), ("successive_halving", "SuccessiveHalvingPruner")])
def test_a_pruner_is_chosen_by_its_group_and_reaches_the_trial_report(choice: str, cls: str):
    optuna = require_module("optuna", "optuna")
    from hydra.utils import instantiate

    cfg = _cfg(["hparams_search=optuna", f"search/pruner={choice}"])
    pruner = instantiate(cfg.search.pruner)
    assert type(pruner) is getattr(optuna.pruners, cls)
    assert cfg.callbacks.trial_report.pruner == cfg.search.pruner
    assert _cfg(["hparams_search=optuna"]).search.pruner is None  # off by default
