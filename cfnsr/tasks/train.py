"""One training job: fit on a fold, test the selected and the last-epoch weights, write ``metrics.json``.

The job folder is locked while the job writes it; a fresh run gets a new run id, a resumed run keeps its own
(``cfnsr.runs.folder``). Checkpoints are read as data only and the files tested are this run's own, checked by the
run id inside them (``cfnsr.runs.checkpoint_files``).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.config_checks import check_train_config
from cfnsr.builders.corpus import build_corpus
from cfnsr.builders.init_checks import split_dict
from cfnsr.builders.objects import build_datamodule, build_module, build_trainer, clip_shapes, fold_split
from cfnsr.builders.run_metadata import provenance, run_metadata
from cfnsr.callbacks import run_end
from cfnsr.callbacks.trial_report import TrialPruned
from cfnsr.callbacks.wandb_summary import wandb_run_options
from cfnsr.console import print_config_tree, progress_bars
from cfnsr.data.source_identity import run_corpus_identity
from cfnsr.models.complexity import count_params, gflops_per_clip
from cfnsr.runs.checkpoint_files import CHECKPOINT_DIR, callback_state, run_checkpoints
from cfnsr.runs.corpus_check import record_fields as corpus_record_fields
from cfnsr.runs.diagnostics import MANIFEST_FILE, by_interaction, read_manifest
from cfnsr.runs.folder import (
    JobLock,
    claim_for_new_run,
    global_rank_from_env,
    new_run_id,
    plan_resume,
    read_own_record,
    requeued_checkpoint,
)
from cfnsr.runs.interrupt import (
    Interrupted,
    interrupt_handlers,
    interrupted_checkpoint,
    interrupted_fields,
    set_aside_interrupted_without_checkpoint,
)
from cfnsr.runs.provenance import code_version
from cfnsr.runs.record import write_record
from cfnsr.runs.summary import format_run_summary
from cfnsr.tasks.prepare import prepare_data
from cfnsr.tasks.run_failure import record_failure

RUN_ID_ENV = "CFNSR_RUN_ID"
# The test-only trainer warns that the fit's checkpoint callbacks are missing; they have nothing to do in a test.
warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`")


def _loggers(cfg: DictConfig, run_dir: Path, resumed: bool, run_id: str, meta: dict[str, Any]) -> list[Any]:
    """The configured loggers, writing into the run folder (a resumed run's, not the new launch folder).

    A resumed CSV logger writes a new version folder: reusing ``csv/`` would delete the first part's per-epoch log.
    A wandb logger gets the run id as its id, so a resumed run continues its wandb run, and a group per recipe.
    """
    out = []
    for c in (cfg.get("logger") or {}).values():
        if c is None or "_target_" not in c:
            continue
        extra: dict[str, Any] = {"save_dir": str(run_dir)}
        if resumed and c._target_.endswith("CSVLogger"):
            extra["version"] = f"resumed-{time.strftime('%Y%m%d-%H%M%S')}"
        if c._target_.endswith("WandbLogger"):
            extra.update(wandb_run_options(meta, run_id, c.get("group")))
            # logger.wandb.log_model is read by WandbSummary, which uploads cfnsr's own checkpoints (also offline);
            # Lightning's upload sees only its ModelCheckpoint files and refuses offline runs.
            extra["log_model"] = False
        out.append(instantiate(c, **extra))
    return out


def _init_and_code(module: Any, out: Path, resumed: bool) -> dict[str, Any]:
    """``init_sources``: which checkpoints initialised the run (per part: path, run id, recipe hash, whether the
    split was recorded); a resumed run loaded none, so its first record's value is kept. ``code_version_previous``:
    the code version of the interrupted part, when a resume runs other code (the report marks such a run)."""
    if not resumed:
        return {"init_sources": {part: {k: v for k, v in src.items() if k != "split"}
                                 | {"split_recorded": src.get("split") is not None}
                                 for part, src in (getattr(module, "init_sources", None) or {}).items()}}
    before = read_own_record(out) or {}
    extra: dict[str, Any] = {"init_sources": before.get("init_sources")}
    previous = before.get("code_version_previous") or before.get("code_version")
    if previous is not None and previous != code_version():
        extra["code_version_previous"] = previous
    return extra


def _callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The configured callbacks (``conf/callbacks/``); entries set to null are left out."""
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None and "_target_" in c]


def set_cpu_threads(cfg: DictConfig) -> None:
    """Intra-op threads of a CPU run: ``cpu_threads`` (null: torch's default, one per core).

    Why a setting: on a shared 2-core machine two threads per training step were measured 13x slower than one
    under load (they wait for each other's core); the tiny models gain little from a second thread when idle.
    """
    n = cfg.get("cpu_threads")
    if n and cfg.trainer.get("accelerator") == "cpu":
        torch.set_num_threads(int(n))


def _corpus_now(cfg: DictConfig) -> dict[str, Any]:
    """The corpus fingerprint (of the clips ``data.corpus`` discovers under ``data.root``) and cache folder now."""
    return run_corpus_identity(cfg.data.root, cfg.data.cache_dir, build_corpus(cfg))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run the job described by ``cfg`` and return its record (also written to ``<run_dir>/metrics.json``).

    Raises before touching any file when the config is invalid, the folder belongs to another run, or the
    checkpoint to resume does not fit this command.
    """
    check_train_config(cfg)
    set_cpu_threads(cfg)
    with interrupt_handlers():  # SIGTERM/SIGINT -> Interrupted: an "interrupted" record with its resume command
        return _train(cfg)


def _train(cfg: DictConfig) -> dict[str, Any]:
    rank0 = global_rank_from_env() == 0
    # A SLURM requeue, or a re-run of an interrupted sweep into its own folder, continues the run there.
    ckpt_path = (cfg.ckpt_path or requeued_checkpoint(Path(cfg.paths.output_dir))
                 or interrupted_checkpoint(Path(cfg.paths.output_dir)))
    if ckpt_path:
        resume = plan_resume(cfg, ckpt_path, corpus=partial(_corpus_now, cfg))
        out, run_id = resume.run_dir, resume.run_id
        print(f"Resuming run {run_id} in {out}: epoch {resume.epoch + 1} of {cfg.trainer.max_epochs} done "
              f"({resume.ckpt_path.name}), continuing with epoch {resume.epoch + 2}")
    else:
        # Lightning's ddp children re-run this script: they inherit rank 0's id through the environment.
        resume, out = None, Path(cfg.paths.output_dir)
        run_id = os.environ.get(RUN_ID_ENV) if not rank0 and os.environ.get(RUN_ID_ENV) else new_run_id()
    os.environ[RUN_ID_ENV] = run_id
    with JobLock(out) if rank0 else nullcontext():
        if rank0 and resume is None:
            set_aside_interrupted_without_checkpoint(out)  # nothing to resume: the job starts again
            claim_for_new_run(out)
        return _train_in(cfg, out, run_id, resume.ckpt_path if resume else None, rank0)


def _train_in(cfg: DictConfig, out: Path, run_id: str, ckpt_path: Path | None, rank0: bool) -> dict[str, Any]:
    pl.seed_everything(cfg.seed, workers=True)
    out.mkdir(parents=True, exist_ok=True)
    if rank0:
        name = "config" if ckpt_path is None else "config.resumed"
        OmegaConf.save(cfg, out / f"{name}.yaml", resolve=True)
        print_config_tree(cfg, out / f"{name.replace('config', 'config_tree')}.txt")
    base = {"run_id": run_id, "run_dir": str(out.resolve()), "slurm_job_id": os.environ.get("SLURM_JOB_ID")}
    try:
        datamodule = build_datamodule(cfg)
        module = build_module(cfg, results_dir=out / "test_results", load_init=ckpt_path is None)
        module.run_config = OmegaConf.to_container(cfg, resolve=True)
        module.run_id = run_id
        module.run_dir = out
        module.run_split = split_dict(fold_split(cfg))  # saved in checkpoints: who may be initialised from them
        gflops = gflops_per_clip(module.model, *clip_shapes(cfg)) if cfg.complexity else None
        meta = run_metadata(cfg, count_params(module.model), gflops)
        meta.update(_init_and_code(module, out, resumed=ckpt_path is not None))
    except (Exception, Interrupted) as exc:  # bad fold, missing checkpoint, a signal: leave a record to list
        if rank0:
            status = (interrupted_fields(exc, out) if isinstance(exc, Interrupted)
                      else {"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
            write_record(out, {**base, **status,
                               "fusion": cfg.fusion.name, "fold": cfg.fold, "seed": cfg.seed,
                               "protocol": cfg.protocol.name, "dataset": cfg.data.name,
                               "backbone": cfg.backbone.name, "code_version": code_version(),
                               **provenance(cfg)})
        raise

    ckpt_dir = out / CHECKPOINT_DIR
    callbacks = _callbacks(cfg)
    loggers = _loggers(cfg, out, resumed=ckpt_path is not None, run_id=run_id, meta=meta)
    trainer = build_trainer(cfg, out, [*callbacks, *progress_bars(cfg.trainer)], loggers or False)
    # The devices the trainer really uses (devices=auto, SLURM): data.batch_size x world size x accumulation.
    meta["effective_batch"] = int(cfg.data.batch_size) * int(trainer.world_size) * int(trainer.accumulate_grad_batches)
    for lg in loggers:
        lg.log_hyperparams({**meta, "run_id": run_id, "config": module.run_config})

    record: dict[str, Any] = {**base, "status": "running", "error": None, **meta}
    debug = debug_flags(cfg)
    if debug:
        record["debug"] = debug
    if ckpt_path is not None:
        record["resumed_from"] = str(ckpt_path)
    if rank0:
        write_record(out, record)
    started = time.time()
    try:
        prepare_data(cfg)  # the corpus and the cache, before any rank reads them (global rank 0 only)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        record.update(corpus_record_fields(datamodule.corpus_identity))
        if trainer.fast_dev_run:
            return _finish_fast_dev_run(cfg, trainer, module, datamodule, out, record, rank0, started)
        # Rank 0 alone reads the checkpoints (it wrote them; other nodes may have no copy of its folder) and hands
        # every rank the facts and, per test, the weights: no rank reads a file that another rank writes.
        states: dict[str, dict[str, Any]] = {}  # rank 0's weights to test, by tag
        chosen = _from_rank0(lambda: _chosen_checkpoints(cfg, ckpt_dir, run_id, states))
        record.update(chosen["fields"])
        record["objective"] = chosen["objective"]
        record["world_size"], record["num_nodes"] = trainer.world_size, trainer.num_nodes
        if cfg.test_after_fit:
            # A logger-free trainer for testing: the CSV logger cannot append a new header to the fit's file
            # after a ddp_spawn re-launch, and test numbers go to metrics.json (and the wandb summary) anyway.
            tester = build_trainer(cfg, out, progress_bars(cfg.trainer), False)
            for tag in ("test", "test_last"):
                _load_from_rank0(module, partial(states.pop, tag))
                module.test_tag, module.test_result = tag, None
                if rank0:  # under ddp_spawn the result comes back in this file: never read an older one
                    (out / "test_results" / f"{tag}.json").unlink(missing_ok=True)
                tester.test(module, datamodule=datamodule, verbose=False)
                record[tag] = with_interactions({**module.last_test_result(), **chosen["tests"][tag]}, cfg)
        record["status"] = "debug" if debug else "finished"
        if debug:
            record["final_metrics"] = _logged_metrics(trainer)
        record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    except Interrupted as exc:  # SIGTERM/SIGINT: not a failure; the record says how to continue
        record.update(corpus_record_fields(datamodule.corpus_identity))
        record.update(interrupted_fields(exc, out), train_seconds=round(time.time() - started, 1))
        if rank0:
            write_record(out, record)
        raise
    except BaseException as exc:
        record.update(corpus_record_fields(datamodule.corpus_identity))
        pruned = isinstance(exc, TrialPruned)  # a search's pruner stopped the trial: not a failure
        record["status"] = "pruned" if pruned else "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["train_seconds"] = round(time.time() - started, 1)  # the failed record says how long it ran too
        if rank0:
            if pruned:
                write_record(out, record)
            else:
                record_failure(out, record, exc)
        raise
    finally:
        record["train_seconds"] = round(time.time() - started, 1)
        run_end(callbacks, record)
    if rank0:
        write_record(out, record)
        print(format_run_summary(record, out))
    # Ranks > 0 return rank 0's record (its run id and folder; a torchrun node launched separately has its own).
    return _from_rank0(lambda: record)


def _chosen_checkpoints(cfg: DictConfig, ckpt_dir: Path, run_id: str,
                        states: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """On rank 0: the record fields of the selected and last checkpoints; their weights go into ``states``.

    The files come from this run's folder, each checked to carry this run's id (never from restored state).
    """
    best_path, best, last_path, last = run_checkpoints(ckpt_dir, run_id)
    if last["epoch"] != cfg.trainer.max_epochs - 1:
        raise RuntimeError(f"{last_path}: holds epoch {last['epoch'] + 1} but the run trained "
                           f"{cfg.trainer.max_epochs} epochs (stopped early?)")
    facts = {
        "fields": {"epochs": int(last["epoch"]) + 1, "best_epoch": int(best["epoch"]), "best_ckpt": str(best_path),
                   "last_ckpt": str(last_path)},
        "objective": _objective(cfg, callback_state(best)),
        "tests": {"test": {"epoch": int(best["epoch"]), "ckpt": best_path.name},
                  "test_last": {"epoch": int(last["epoch"]), "ckpt": last_path.name}},
    }
    facts["fields"].update(selection_facts(callback_state(last)))
    states.update(test=best["state_dict"], test_last=last["state_dict"])
    return facts


def selection_facts(state: dict[str, Any]) -> dict[str, Any]:
    """What decided the selected epoch, from the ``RunCheckpoints`` state of the last checkpoint: the monitored
    metric's best value (``val_best``), how many later epochs equalled the best when they ran (``val_ties``) and
    the rule among ties (``selection_ties``). Empty for a checkpoint without that state."""
    if not state.get("monitor"):
        return {}
    tie = state.get("tie_break")
    rule = f"lower {tie}, then the earlier epoch" if tie else "the earlier epoch"
    return {"val_monitor": state["monitor"], "val_best": state.get("best_score"),
            "val_ties": int(state.get("ties") or 0), "selection_ties": rule}


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def with_interactions(result: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """``result`` plus ``by_interaction`` (test accuracy per interaction type) when the corpus at ``cfg.data.root``
    has an interactions manifest (``cfnsr.runs.diagnostics``); unchanged otherwise."""
    manifest = read_manifest(cfg.data.root)
    if manifest is None or "confusion" not in result:
        return result
    where = str(Path(cfg.data.root) / MANIFEST_FILE)
    return {**result, "by_interaction": by_interaction(result["confusion"], manifest, where)}


def _from_rank0(make: Callable[[], Any]) -> Any:
    """``make()`` evaluated on rank 0 only; its value (pickled, so keep it small) on every rank.

    Outside a process group (one process, or the main process of ddp_spawn) this is just ``make()``. When rank 0 fails, it raises its own error and the other ranks raise one
    that names it, instead of waiting for a broadcast that never comes.
    """
    if not _distributed():
        return make()
    payload: list[Any] = [None]
    error: BaseException | None = None
    if torch.distributed.get_rank() == 0:
        try:
            payload = [("ok", make())]
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other ranks heard of it
            error, payload = exc, [("error", f"{type(exc).__name__}: {exc}")]
    torch.distributed.broadcast_object_list(payload, src=0)
    kind, value = payload[0]
    if error is not None:
        raise error
    if kind == "error":
        raise RuntimeError(f"rank 0 failed: {value}")
    return value


def _load_from_rank0(module: pl.LightningModule, state_dict: Callable[[], dict[str, Any]]) -> None:
    """Load the weights ``state_dict()`` gives on rank 0 into ``module`` on every rank.

    Every rank built the same network, so the tensors of ``module.state_dict()`` match in order and shape; each
    is broadcast in place from rank 0 (on the current GPU under NCCL, which takes no CPU tensors).
    """
    def load() -> None:
        module.load_state_dict(state_dict())  # strict: a mismatch fails every rank, not only rank 0

    _from_rank0(load)
    if not _distributed():
        return
    device = (torch.device("cuda", torch.cuda.current_device())
              if torch.distributed.get_backend() == "nccl" else torch.device("cpu"))
    with torch.no_grad():
        for tensor in module.state_dict().values():
            buf = tensor.to(device)
            torch.distributed.broadcast(buf, src=0)
            tensor.copy_(buf)


def debug_flags(cfg: DictConfig) -> list[str]:
    """The trainer settings that make this a debugging run, not a result: it sees only part of the data."""
    t = cfg.trainer
    flags = [f"trainer.{k}={t[k]}" for k in ("fast_dev_run", "overfit_batches") if t.get(k)]
    flags += [f"trainer.{k}={t[k]}" for k in ("limit_train_batches", "limit_val_batches", "limit_test_batches")
              if t.get(k) is not None and t[k] != 1.0]
    return flags


def _logged_metrics(trainer: pl.Trainer) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1}


def _finish_fast_dev_run(cfg: DictConfig, trainer: pl.Trainer, module: Any, datamodule: Any, out: Path,
                         record: dict[str, Any], rank0: bool, started: float) -> dict[str, Any]:
    """``trainer.fast_dev_run``: Lightning ran one batch per stage and wrote no checkpoints (nor does
    ``RunCheckpoints``); the test step runs once on the weights in memory. The record says "debug".
    The caller's ``finally`` closes the loggers."""
    record.update(final_metrics=_logged_metrics(trainer), selection="fast_dev_run: the weights after one batch")
    if cfg.test_after_fit:
        module.test_tag, module.test_result = "test", None
        if rank0:  # under ddp_spawn the result comes back in this file: never read an older one
            (out / "test_results" / "test.json").unlink(missing_ok=True)
        trainer.test(module, datamodule=datamodule, verbose=False)
        record["test"] = with_interactions(module.last_test_result(), cfg)
    record.update(status="debug", epochs=1, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  train_seconds=round(time.time() - started, 1))
    if rank0:
        write_record(out, record)
        print(format_run_summary(record, out))
    return record


def _objective(cfg: DictConfig, state: dict[str, Any]) -> dict[str, Any] | None:
    """The sweeper's objective: the selected epoch's validation score under the clean protocol, else none.

    Under the paper protocol the "validation" set is the test fold, so it is no objective for any search.
    """
    name = cfg.protocol.get("objective")
    if not name:
        return None
    if name != state.get("monitor"):
        raise RuntimeError(f"protocol.objective={name} but the checkpoints monitor {state.get('monitor')!r}")
    return {"name": name, "value": state.get("best_score"), "epoch": state.get("best_epoch")}
