"""Selection among tied validation scores (RunCheckpoints.tie_break) and the run summary's saturation warning."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from tests_helpers import make

from cfnsr.callbacks.run_checkpoints import RunCheckpoints
from cfnsr.runs.summary import format_run_summary, selection_warnings
from cfnsr.tasks.train import selection_facts


class _Trainer:
    """What RunCheckpoints.on_validation_end reads, and a record of what it saved."""

    sanity_checking = False
    fast_dev_run = False

    def __init__(self) -> None:
        self.callback_metrics: dict[str, float] = {}
        self.current_epoch = 0
        self.saved: list[str] = []
        self.strategy = SimpleNamespace(remove_checkpoint=lambda path: None)


def _select(cb: RunCheckpoints, epochs: list[tuple[float, float]], monkeypatch: pytest.MonkeyPatch) -> int:
    trainer = _Trainer()
    cb.dirpath = Path("/nowhere")  # nothing is written: _save is replaced
    monkeypatch.setattr(cb, "_save", lambda t, name: trainer.saved.append(name))
    for epoch, (war, loss) in enumerate(epochs):
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"val/war": war, "val/loss": loss}
        cb.on_validation_end(trainer, None)
    return cb.best_epoch


RUN = {"dirpath": "/nowhere", "run_id": "run-1"}  # what the training job gives it
SATURATED = [(0.9, 0.5), (1.0, 0.30), (1.0, 0.10), (1.0, 0.10), (1.0, 0.20)]


def test_ties_go_to_the_lower_validation_loss_then_the_earlier_epoch(monkeypatch: pytest.MonkeyPatch):
    cb = make("callbacks", "default", "run_checkpoints", **RUN)  # the shipped config: tie_break val/loss
    assert cb.tie_break == "val/loss"
    assert _select(cb, SATURATED, monkeypatch) == 2  # epoch 3 (0-based 2): lower loss; epoch 4 ties it, comes later
    assert cb.ties == 3 and cb.state_dict()["tie_break"] == "val/loss"
    first = RunCheckpoints(monitor="val/war", mode="max", tie_break=None, **RUN)
    assert _select(first, SATURATED, monkeypatch) == 1  # without a tie break: the first epoch to reach the best


def test_ties_count_only_the_selected_score(monkeypatch: pytest.MonkeyPatch):
    """Ties of an earlier best that a later epoch beat say nothing about the selection (before: a demo run whose best
    epoch was unique printed "1 later epoch(s) equalled the best", counting a tie of a superseded best)."""
    cb = make("callbacks", "default", "run_checkpoints", **RUN)
    epochs = [(0.5, 1.0), (0.8, 0.5), (0.8, 0.6), (0.9, 0.4), (0.85, 0.3)]  # 0.8 tied once, then 0.9 alone
    assert _select(cb, epochs, monkeypatch) == 3
    assert cb.ties == 0 and selection_facts(cb.state_dict())["val_ties"] == 0
    again = make("callbacks", "default", "run_checkpoints", **RUN)
    assert _select(again, [*epochs, (0.9, 0.5)], monkeypatch) == 3 and again.ties == 1  # a tie of the selected score


def test_selection_facts_and_saturation_warning(monkeypatch: pytest.MonkeyPatch):
    cb = make("callbacks", "default", "run_checkpoints", **RUN)
    _select(cb, SATURATED, monkeypatch)
    facts = selection_facts(cb.state_dict())
    assert facts == {"val_monitor": "val/war", "val_best": 1.0, "val_ties": 3,
                     "selection_ties": "lower val/loss, then the earlier epoch"}
    record = {"fusion": "cfnsr", "backbone": "tiny", "dataset": "synthetic", "fold": 1, "test_actors": [1], "seed": 1,
              "protocol": "clean", "params": 1, "selection": "best validation epoch (clean protocol)",
              "best_epoch": 2, "epochs": 5, **facts,
              "test": {"war": 0.9, "uar": 0.9, "f1": 0.9, "n": 64,
                       "by_interaction": {"synergy": {"acc": 0.5, "n": 16}}}}
    text = format_run_summary(record, "/nowhere")
    assert "selected epoch: 3 of 5 (ties on val/war: lower val/loss, then the earlier epoch)" in text
    assert "WARNING: validation saturated (val/war = 100.00 %)" in text
    assert "synergy 50.00" in text
    unsaturated = {**record, "val_best": 0.95, "val_ties": 1}
    assert selection_warnings(unsaturated) == [
        "   note: 1 later epoch(s) equalled the best val/war; chosen by lower val/loss, then the earlier epoch"]
    assert selection_warnings({**record, "val_best": 0.95, "val_ties": 0}) == []
