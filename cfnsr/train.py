"""One training job: fit on a fold, test the selected and the last-epoch weights, write ``metrics.json``."""

from __future__ import annotations

import json
import re
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from cfnsr.complexity import count_params, gflops_per_clip
from cfnsr.experiment import build_datamodule, build_module, build_trainer, clip_shapes, fold_split
from cfnsr.run_record import write_record
from cfnsr.summary import format_run_summary

_EPOCH_IN_NAME = re.compile(r"best-e(\d+)")
# The test-only trainer warns that the fit's checkpoint callbacks are missing; they have nothing to do in a test.
warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`")


def run_metadata(cfg: DictConfig, params: int, gflops: float | None) -> dict[str, Any]:
    """The descriptive fields of a run record (everything but the results)."""
    split = fold_split(cfg)
    return {
        "experiment": cfg.experiment_name,
        "dataset": cfg.data.name,
        "backbone": cfg.backbone.name,
        "fusion": cfg.fusion.name,
        "fusion_stage": cfg.fusion.stage,
        "protocol": cfg.protocol.name,
        "selection": cfg.protocol.selection,
        "folds": cfg.folds.name,
        "fold": cfg.fold,
        "test_actors": list(split.test_actors),
        "val_actors": list(split.val_actors),
        "seed": cfg.seed,
        "params": params,
        "gflops": gflops,
        "paper": OmegaConf.to_container(cfg.fusion.paper) if cfg.fusion.get("paper") else None,
    }


def _loggers(cfg: DictConfig) -> list[Any]:
    return [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None and "_target_" in c]


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run the job described by ``cfg`` and return its record (also written to ``<output_dir>/metrics.json``)."""
    pl.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)

    try:
        datamodule = build_datamodule(cfg)
        module = build_module(cfg, results_dir=out / "test_results")
        module.run_config = OmegaConf.to_container(cfg, resolve=True)
        gflops = gflops_per_clip(module.model, *clip_shapes(cfg)) if cfg.complexity else None
        meta = run_metadata(cfg, count_params(module.model), gflops)
    except Exception as exc:  # bad fold, missing checkpoint, ...: leave a record the report can list
        write_record(out, {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "run_dir": str(out.resolve()),
                           "fusion": cfg.fusion.name, "fold": cfg.fold, "seed": cfg.seed,
                           "protocol": cfg.protocol.name, "dataset": cfg.data.name, "backbone": cfg.backbone.name})
        raise

    # A resumed run keeps writing next to the checkpoint it resumes from: ModelCheckpoint restores its best score
    # only when its folder is unchanged, and the best epoch must be chosen over the whole run, not its second half.
    ckpt_dir = Path(cfg.ckpt_path).parent if cfg.ckpt_path else out / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best-e{epoch:03d}", auto_insert_metric_name=False, monitor="val/war", mode="max",
    )
    # ModelCheckpoint(save_last=True) refreshes last.ckpt only when a new best is saved; a separate unmonitored
    # callback rewrites it after every epoch, so resuming and the last-epoch score really use the last epoch.
    last_checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1)
    loggers = _loggers(cfg)
    trainer = build_trainer(cfg, out, [checkpoint, last_checkpoint], loggers or False)
    for lg in loggers:
        lg.log_hyperparams({**meta, "config": module.run_config})

    record: dict[str, Any] = {"status": "running", "error": None, "run_dir": str(out.resolve()), **meta}
    if trainer.is_global_zero:
        write_record(out, record)
    started = time.time()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        record["epochs"] = trainer.current_epoch
        record["best_ckpt"] = checkpoint.best_model_path or None
        last = ckpt_dir / "last.ckpt"  # by name: under ddp_spawn the callbacks' paths stay in the child processes
        record["last_ckpt"] = str(last) if last.is_file() else None
        m = _EPOCH_IN_NAME.search(Path(checkpoint.best_model_path).name) if checkpoint.best_model_path else None
        record["best_epoch"] = int(m.group(1)) if m else None
        if cfg.test_after_fit:
            # A logger-free trainer for testing: the CSV logger cannot append a new header to the fit's file
            # after a ddp_spawn re-launch, and test numbers go to metrics.json (and the wandb summary) anyway.
            tester = build_trainer(cfg, out, [], False)
            for tag, ckpt in (("test", record["best_ckpt"]), ("test_last", record["last_ckpt"])):
                module.test_tag = tag
                tester.test(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=False, verbose=False)
                record[tag] = json.loads((out / "test_results" / f"{tag}.json").read_text())
        record["status"] = "finished"
    except BaseException as exc:
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        if trainer.is_global_zero:
            write_record(out, record)
            (out / "error.txt").write_text(traceback.format_exc())
        raise
    finally:
        record["train_seconds"] = round(time.time() - started, 1)
        _finish_loggers(loggers, record)
    if trainer.is_global_zero:
        write_record(out, record)
        print(format_run_summary(record, out))
    return record


def _finish_loggers(loggers: list[Any], record: dict[str, Any]) -> None:
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":
            import wandb

            if record.get("status") == "finished" and wandb.run is not None:
                for tag in ("test", "test_last"):
                    res = record.get(tag) or {}
                    for key in ("war", "uar", "f1"):
                        if key in res:
                            wandb.run.summary[f"{tag}/{key}"] = res[key]
                if record.get("test"):
                    wandb.run.summary["params"] = record["params"]
                    wandb.log({"test/confusion": wandb.Table(
                        columns=["true", "pred", "count"],
                        data=[[i, j, c] for i, row in enumerate(record["test"]["confusion"])
                              for j, c in enumerate(row)])})
            wandb.finish()  # one wandb run per job, also inside a multirun
