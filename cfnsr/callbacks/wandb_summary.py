"""Weights & Biases: one wandb run per cfnsr run, grouped for comparing baselines.

* The wandb run id is the cfnsr run id (``resume="allow"``), so a resumed or requeued run continues its wandb run.
* Groups: ``<experiment>/<corpus>/<fusion>/<recipe hash>`` (runs that differ only in fold and seed share a group;
  corpora never do); a search trial goes to ``<experiment>/<corpus>/search/<study>`` and is named ``trial-<n>``. ``logger.wandb.group=...`` overrides.
* Curves: validation and training metrics are plotted against ``epoch``, so runs with other batch sizes line up.
* At the end of the run: test WAR/UAR/F1 of the selected and the last checkpoint, per-class recall and F1 (by class
  name) in the summary; the test confusion matrix as wandb's confusion-matrix chart with class names; with
  ``logger.wandb.log_model=true`` the selected and last checkpoints as one ``model`` artifact whose metadata holds the
  run id and the training recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from cfnsr.callbacks.base import RunEndCallback

RECIPE_HASH_CHARS = 10


def wandb_run_options(meta: dict[str, Any], run_id: str, group: str | None) -> dict[str, Any]:
    """The ``WandbLogger`` arguments that tie the wandb run to cfnsr run ``run_id`` (``meta``: the run record's
    descriptive fields, see ``cfnsr.builders.run_metadata``); ``group``: the configured one (None: derived)."""
    search = meta.get("search")
    options: dict[str, Any] = {"id": run_id, "resume": "allow"}
    if search:
        options["group"] = group or f"{meta['experiment']}/{meta['dataset']}/search/{search.get('study') or 'study'}"
        options["name"] = f"trial-{search['trial']}"
    else:
        recipe = str(meta["recipe_hash"])[:RECIPE_HASH_CHARS]
        options["group"] = group or f"{meta['experiment']}/{meta['dataset']}/{meta['fusion']}/{recipe}"
    return options


def per_class_scores(confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> dict[str, float]:
    """``{"<name>/recall": r, "<name>/f1": f}`` from a (K, K) confusion matrix (rows: true class, columns:
    predicted); a class with no true clips has no recall (left out), no predictions and no clips: F1 left out."""
    c = np.asarray(confusion, dtype=np.float64)
    out: dict[str, float] = {}
    for k, name in enumerate(class_names):
        tp, true_k, pred_k = c[k, k], c[k].sum(), c[:, k].sum()
        if true_k:
            out[f"{name}/recall"] = round(float(tp / true_k), 6)
        if true_k + pred_k:
            out[f"{name}/f1"] = round(float(2 * tp / (true_k + pred_k)), 6)
    return out


def confusion_pairs(confusion: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """(true labels, predictions), one pair per clip, that give back ``confusion`` exactly."""
    y_true: list[int] = []
    y_pred: list[int] = []
    for i, row in enumerate(confusion):
        for j, n in enumerate(row):
            y_true += [i] * int(n)
            y_pred += [j] * int(n)
    return y_true, y_pred


class WandbSummary(RunEndCallback):
    """With a ``WandbLogger`` among the trainer's loggers: epoch-based curves, the test results in the summary, the
    confusion-matrix chart, optionally the checkpoints as an artifact; then finish the wandb run (a multirun starts
    one wandb run per job). Does nothing without wandb.

    Args:
        class_names: the corpus's class names, in label order (None: ``class_<k>``).
        log_model: upload the selected and last checkpoints as a ``model`` artifact at the end of a finished run.
    """

    def __init__(self, *, class_names: Sequence[str] | None, log_model: bool) -> None:
        self.class_names = list(class_names) if class_names else None
        self.log_model = bool(log_model)
        self.logger: WandbLogger | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.logger = next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)
        if self.logger is None or trainer.global_rank != 0:
            return
        run = self.logger.experiment
        run.define_metric("epoch")
        for pattern in ("val/*", "train/*"):
            run.define_metric(pattern, step_metric="epoch")

    def _names(self, k: int) -> list[str]:
        names = self.class_names or []
        return names if len(names) == k else [f"class_{i}" for i in range(k)]

    def on_run_end(self, record: dict[str, Any]) -> None:
        if self.logger is None:
            return
        import wandb  # only with a wandb logger configured

        run = wandb.run
        if run is not None and record.get("status") in ("finished", "debug"):
            for tag in ("test", "test_last"):
                res = record.get(tag) or {}
                for key in ("war", "uar", "f1"):
                    if key in res:
                        run.summary[f"{tag}/{key}"] = res[key]
            test = record.get("test") or {}
            if test.get("confusion"):
                names = self._names(len(test["confusion"]))
                for key, value in per_class_scores(test["confusion"], names).items():
                    run.summary[f"test/class/{key}"] = value
                y_true, y_pred = confusion_pairs(test["confusion"])
                run.log({"test/confusion": wandb.plot.confusion_matrix(
                    y_true=y_true, preds=y_pred, class_names=names, title="test confusion (selected checkpoint)")})
            run.summary["params"] = record.get("params")
            if self.log_model and record.get("status") == "finished":
                self._log_checkpoints(run, record)
        wandb.finish()

    @staticmethod
    def _log_checkpoints(run: Any, record: dict[str, Any]) -> None:
        import wandb

        meta = {k: record.get(k) for k in ("run_id", "recipe_hash", "recipe", "experiment", "fusion", "fold", "seed",
                                           "protocol", "best_epoch", "epochs")}
        meta["test_war"] = (record.get("test") or {}).get("war")
        art = wandb.Artifact(f"model-{record['run_id']}", type="model", metadata=meta)
        for key, alias in (("best_ckpt", "selected"), ("last_ckpt", "last")):
            if record.get(key):
                art.add_file(record[key], name=f"{alias}-{Path(record[key]).name}")
        run.log_artifact(art, aliases=["selected", "last"])
