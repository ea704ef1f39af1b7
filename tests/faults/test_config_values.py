"""Config values that used to fail late (after the data was prepared and the model built) with a third-party message
are refused up front, naming the key the user set."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_helpers import compose_train

from cfnsr.builders.config_checks import ConfigError, check_train_config, source_key


@pytest.mark.parametrize(("override", "named"), [
    ("data.batch_size=0", r"data\.batch_size=0: expected a value >= 1"),
    ("data.batch_size=-1", r"data\.batch_size=-1: expected a value >= 1"),
    ("data.batch_size=2.5", r"data\.batch_size=2\.5: expected an integer"),
    ("optimizer.lr=-1", r"optimizer\.lr=-1: expected a value > 0"),
    ("optimizer.lr=0", r"optimizer\.lr=0: expected a value > 0"),
    ("data.num_workers=-1", r"data\.num_workers=-1: expected a value >= 0"),
    ("data.eval_batch_size=0", r"data\.eval_batch_size=0"),
    ("preprocess.audio_duration=0", r"preprocess\.audio_duration=0"),
    ("+trainer.accumulate_grad_batches=0", r"trainer\.accumulate_grad_batches=0"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, override: str, named: str) -> None:
    cfg = compose_train([override], tmp_path / "data", tmp_path / "out")
    with pytest.raises(ConfigError, match=named):
        check_train_config(cfg)


@pytest.mark.parametrize("value", ["0", "-3"])
def test_frames_error_names_the_key_the_user_set(tmp_path: Path, value: str) -> None:
    """``preprocess.frames`` is ``${data.frames}``: the user set ``data.frames``, so the message names it first."""
    cfg = compose_train([f"data.frames={value}"], tmp_path / "data", tmp_path / "out")
    with pytest.raises(ConfigError) as err:
        check_train_config(cfg)
    assert str(err.value).startswith(f"data.frames={value} (used as preprocess.frames)")
    assert source_key(cfg, "preprocess.frames") == "data.frames"
    # set at the preprocess key itself, it is named there
    cfg = compose_train([f"preprocess.frames={value}"], tmp_path / "data", tmp_path / "out")
    with pytest.raises(ConfigError, match=rf"^preprocess\.frames={value}: expected"):
        check_train_config(cfg)


def test_max_epochs_zero_and_defaults(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs=0"):
        check_train_config(compose_train(["trainer.max_epochs=0"], tmp_path / "data", tmp_path / "out"))
    check_train_config(compose_train([], tmp_path / "data", tmp_path / "out"))  # the defaults pass


def test_train_stops_before_touching_data_or_folder(tmp_path: Path) -> None:
    """The check runs first: no corpus generated, no run folder written."""
    from cfnsr.tasks.train import train

    cfg = compose_train(["data.batch_size=0"], tmp_path / "data", tmp_path / "out")
    with pytest.raises(ConfigError, match=r"data\.batch_size=0"):
        train(cfg)
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize(("override", "named"), [
    # before: trained with batch 64 while the record's effective_batch and the recipe said 16
    ("datamodule.batch_size=64", r"^datamodule\.batch_size=64: .*; set data\.batch_size instead"),
    ("datamodule.storage=memory", r"^datamodule\.storage='memory': .*; set data\.storage instead"),
    ("+datamodule.extra=1", r"^datamodule\.extra=1: .*give the value a key of its own"),
])
def test_a_value_set_on_the_wiring_node_is_refused_naming_the_key_to_set(tmp_path: Path, override: str,
                                                                          named: str) -> None:
    cfg = compose_train([override], tmp_path / "data", tmp_path / "out")
    with pytest.raises(ConfigError, match=named):
        check_train_config(cfg)
    # an interpolation is wiring: accepted
    check_train_config(compose_train(["datamodule.eval_batch_size=${data.batch_size}"], tmp_path / "data",
                                     tmp_path / "out"))
