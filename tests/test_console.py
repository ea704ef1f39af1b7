"""The console: Lightning's noise filtered, the log file copy of the console, the config tree, progress bars."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tests_helpers import TINY_DATA, TINY_FOLDS

from cfnsr.console import (
    EpochLines,
    TerminalProgressBar,
    config_tree,
    console_to_log,
    print_config_tree,
    progress_bars,
    quiet_lightning,
)

ROOT = Path(__file__).resolve().parents[1]


def _records(logger_name: str, *messages: str) -> list[str]:
    """The messages of ``logger_name`` that reach a handler on the root logger."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    root, handler = logging.getLogger(), Keep()
    root.addHandler(handler)
    try:
        quiet_lightning()
        with console_to_log(handlers=[]):  # a new job: the once-per-job lines may show again
            lg = logging.getLogger(logger_name)
            for m in messages:
                lg.info(m)
    finally:
        root.removeHandler(handler)
    return seen


def test_lightning_tips_are_dropped_and_hardware_lines_shown_once_per_job():
    msgs = ["💡 Tip: For seamless cloud uploads and versioning, try installing litmodels",
            "GPU available: False, used: False", "Restoring states", "GPU available: False, used: False"]
    assert _records("pytorch_lightning.utilities.rank_zero", *msgs) == ["GPU available: False, used: False",
                                                                       "Restoring states"]
    assert _records("pytorch_lightning.utilities.rank_zero", msgs[1]) == [msgs[1]]  # next job: shown again


def test_known_deprecation_noise_is_silenced_but_other_warnings_are_not():
    quiet_lightning()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_lightning()  # simplefilter reset the filters; the entry point calls this after any such reset
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1)
        warnings.warn("The `srun` command is available on your system but is not used. HINT: ...", stacklevel=1)
        warnings.warn("a warning about our data", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning about our data"]


def test_console_to_log_copies_prints_into_the_file_and_restores_the_streams(tmp_path: Path):
    log = tmp_path / "train.log"
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    out, err = sys.stdout, sys.stderr
    try:
        with console_to_log([handler]):
            print("== run summary")
            sys.stdout.write("\x1b[1mbold\x1b[0m\n")
            sys.stdout.write("step 1\rstep 2\rdone\n")
            print("to stderr", file=sys.stderr)
            print("no newline at the end", end="")
        assert sys.stdout is out and sys.stderr is err
        with pytest.raises(ValueError, match="broken"), console_to_log([handler]):
            raise ValueError("broken")
    finally:
        handler.close()
    text = log.read_text()
    assert "[stdout] == run summary" in text and "[stdout] bold" in text and "\x1b" not in text
    assert "[stdout] done" in text and "step 1" not in text  # progress redraws keep their final state
    assert "[stderr] to stderr" in text and "[stdout] no newline at the end" in text
    assert "job failed: broken" in text and "Traceback" in text and 'raise ValueError("broken")' in text


def test_console_to_log_without_a_log_file_changes_nothing():
    out = sys.stdout
    with console_to_log(handlers=[]):
        assert sys.stdout is out


def test_config_tree_lists_groups_in_reading_order_and_is_saved_as_plain_text(tmp_path: Path, capsys):
    cfg = OmegaConf.create({"seed": 1, "ckpt_path": None, "trainer": {"max_epochs": 2},
                            "backbone": {"name": "tiny", "layers": [1, 1, 1, 1]}, "data": {"size": "${size}"},
                            "size": 32})
    labels = [str(child.label) for child in config_tree(cfg).children]
    assert labels == ["seed: 1", "ckpt_path: null", "size: 32", "data", "backbone", "trainer"]
    print_config_tree(cfg, tmp_path / "config_tree.txt")
    shown = capsys.readouterr().out
    saved = (tmp_path / "config_tree.txt").read_text()
    for text in (shown, saved):
        assert "CONFIG" in text and "layers: [1, 1, 1, 1]" in text and "size: 32" in text  # resolved
    assert all(line == line.rstrip() for line in saved.splitlines()) and "\x1b" not in saved


def test_progress_bars_are_off_without_a_terminal_and_count_epochs_from_one():
    assert progress_bars(OmegaConf.create({"enable_progress_bar": False})) == []
    (bar, lines) = progress_bars(OmegaConf.create({"enable_progress_bar": True}), io.StringIO())
    assert isinstance(bar, TerminalProgressBar) and isinstance(lines, EpochLines)  # off a terminal: epoch lines
    assert TerminalProgressBar(io.StringIO()).is_disabled  # a pipe or a file: no frozen bars

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    class Trainer:
        max_epochs = 2

    (bar,) = progress_bars(OmegaConf.create({"enable_progress_bar": True}), Tty())
    assert not bar.is_disabled
    bar._trainer = Trainer()
    assert bar._get_train_description(0).strip() == "Epoch 1/2"


@pytest.mark.slow
def test_train_console_is_quiet_shows_the_config_tree_and_train_log_holds_it(tiny_data_dir: Path, tmp_path: Path):
    run = tmp_path / "run"
    cmd = [sys.executable, "train.py", TINY_FOLDS, *TINY_DATA, "preprocess.workers=0", "trainer.max_epochs=1",
           "measure_gflops=false", "fusion=averaging", f"hydra.run.dir={run}"]
    env = {**os.environ, "CFNSR_DATA_DIR": str(tiny_data_dir)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    console = done.stdout + done.stderr
    assert "Tip" not in console and "litmodels" not in console and "litlogger" not in console
    assert "LeafSpec" not in console and "srun" not in console
    assert "CONFIG" in done.stdout and "└── " in done.stdout and "fusion" in done.stdout
    assert "Testing" not in console and "Epoch 0" not in console  # no frozen progress bars off a terminal
    assert console.count("GPU available") == 1  # two Trainers (fit, test), one hardware report
    log = (run / "train.log").read_text()
    assert "== averaging | backbone=tiny" in log and "selected epoch: 1 of 1" in log  # the run summary
    assert "CONFIG" in log and "preprocess:" in log and "GPU available" in log  # prints and Lightning's logs
    assert "Tip" not in log
    assert re.search(r"epoch 1/1: .*val/war \d\.\d{4} \(\d+ s\)", log)  # off a terminal: one line per epoch
    tree = (run / "config_tree.txt").read_text()
    assert "averaging" in tree and (run / "config.yaml").is_file()


def test_config_tree_never_crops_a_value_on_a_narrow_console():
    from rich.console import Console

    cfg = OmegaConf.create({"preprocess": {f"key_{i}": f"value_{i}" for i in range(12)},
                            "folds": {"test_actors": [[1, 2, 3, 4], [5, 6, 7, 8]]}})
    console = Console(file=io.StringIO(), width=40, color_system=None)
    console.print(config_tree(cfg))
    text = console.file.getvalue()
    for i in range(12):  # one key per line, every value whole
        assert f"key_{i}: value_{i}" in text
    assert "- [1, 2, 3, 4]" in text and "- [5, 6, 7, 8]" in text


def test_off_a_terminal_each_epoch_ends_with_one_line(caplog):
    import torch

    class Trainer:
        sanity_checking, is_global_zero, current_epoch, max_epochs = False, True, 2, 12
        callback_metrics = {"train/loss": torch.tensor(1.23456), "val/war": torch.tensor(0.45)}

    lines = EpochLines()
    lines.on_train_epoch_start(Trainer(), None)
    with caplog.at_level(logging.INFO, logger="cfnsr"):
        lines.on_train_epoch_end(Trainer(), None)
    (message,) = [r.getMessage() for r in caplog.records if r.name == "cfnsr"]
    assert message.startswith("epoch 3/12: train/loss 1.2346, val/war 0.4500 (")
