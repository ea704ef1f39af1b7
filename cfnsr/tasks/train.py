"""One training job: fit on a fold, test the selected and the last-epoch weights, write ``metrics.json``.

The job folder is locked while the job writes it; a fresh run gets a new run id, a resumed run keeps its own
(``cfnsr.runs.folder``). Checkpoints are read as data only and the files tested are this run's own, checked by the
run id inside them (``cfnsr.runs.checkpoint_files``).
"""

from __future__ import annotations

import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.config_checks import check_train_config
from cfnsr.builders.corpus import build_corpus, prepare_data
from cfnsr.builders.init_checks import split_dict
from cfnsr.builders.objects import (
    build_datamodule,
    build_module,
    build_trainer,
    clip_shapes,
    fold_split,
    preprocess_settings,
)
from cfnsr.builders.run_metadata import part_of_data_flags, provenance, run_metadata
from cfnsr.callbacks import run_end
from cfnsr.callbacks.run_checkpoints import RunCheckpoints
from cfnsr.callbacks.trial_report import TrialPruned
from cfnsr.callbacks.wandb_summary import wandb_run_options
from cfnsr.console import print_config_tree, progress_bars
from cfnsr.data.source_identity import run_corpus_identity
from cfnsr.models.complexity import count_params, gflops_per_clip
from cfnsr.module import EmotionModule
from cfnsr.runs.checkpoint_files import CHECKPOINT_DIR, RunIdentity, callback_state, run_checkpoints
from cfnsr.runs.corpus_check import record_fields as corpus_record_fields
from cfnsr.runs.diagnostics import with_interactions
from cfnsr.runs.distributed import from_rank0
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
    interrupt_handlers,
    interrupted_checkpoint,
    set_aside_interrupted_without_checkpoint,
)
from cfnsr.runs.provenance import code_version
from cfnsr.runs.run_record import RunRecord
from cfnsr.runs.summary import format_run_summary
from cfnsr.tester import run_test

RUN_ID_ENV = "CFNSR_RUN_ID"
RESULTS_DIR = "test_results"  # <run>/test_results/<tag>.json: each test's result as rank 0 wrote it (cfnsr.tester)
TESTS = ("test", "test_last")  # the selected checkpoint's test, the last epoch's
# The test-only trainer warns that the fit's checkpoint callbacks are missing; they have nothing to do in a test.
warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`")


@dataclass(frozen=True)
class Place:
    """Where and as whom this process runs the job: the run folder and id, the checkpoint it resumes (None: a new
    run) and whether it is global rank 0 (which alone locks the folder and writes the record)."""

    run_dir: Path
    run_id: str
    resume_from: Path | None
    rank0: bool


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run the job described by ``cfg`` and return its record (also written to ``<run_dir>/metrics.json``).

    Raises before touching any file when the config is invalid, the folder belongs to another run, or the
    checkpoint to resume does not fit this command.
    """
    check_train_config(cfg)
    set_cpu_threads(cfg)
    with interrupt_handlers():  # SIGTERM/SIGINT -> Interrupted: an "interrupted" record with its resume command
        place = _place(cfg)
        with JobLock(place.run_dir) if place.rank0 else nullcontext():
            if place.rank0 and place.resume_from is None:
                set_aside_interrupted_without_checkpoint(place.run_dir)  # nothing to resume: the job starts again
                claim_for_new_run(place.run_dir)
            return _run(cfg, place)


def _run(cfg: DictConfig, place: Place) -> dict[str, Any]:
    """Build (data, module, callbacks, loggers, trainer) -> prepare the data -> fit -> test -> record."""
    pl.seed_everything(cfg.seed, workers=True)
    _save_config(cfg, place)
    record = RunRecord(place.run_dir, {"run_id": place.run_id, "run_dir": str(place.run_dir.resolve()),
                                       "slurm_job_id": os.environ.get("SLURM_JOB_ID")}, write=place.rank0)
    record.update(**_identity_fields(cfg))  # enough for a failure before training to be listed
    with record.watching(traceback_file=False):  # bad fold, missing checkpoint, a signal: leave a record to list
        identity = RunIdentity(place.run_id, OmegaConf.to_container(cfg, resolve=True), split_dict(fold_split(cfg)))
        datamodule = build_datamodule(cfg)
        module, init_sources = build_module(cfg, identity, load_init=place.resume_from is None)
        meta = {**_metadata(cfg, module), **_init_and_code(init_sources, place)}

    callbacks = configured_callbacks(cfg, place)
    loggers = _loggers(cfg, place, meta)
    trainer = build_trainer(cfg, place.run_dir, [*callbacks, *progress_bars(cfg.trainer)], loggers or False)
    # The devices the trainer really uses (devices=auto, SLURM): data.batch_size x world size x accumulation.
    meta["effective_batch"] = int(cfg.data.batch_size) * int(trainer.world_size) * int(trainer.accumulate_grad_batches)
    for lg in loggers:
        lg.log_hyperparams({**meta, "run_id": place.run_id, "config": identity.config})
    debug = debug_flags(cfg)
    record.start(**meta, **({"debug": debug} if debug else {}),
                 **({"resumed_from": str(place.resume_from)} if place.resume_from else {}))
    try:
        with record.watching(pruned=(TrialPruned,)):  # failed, pruned or interrupted: the record says which
            identity.corpus = _prepare_data(cfg, place)  # into every checkpoint: resume compares it
            record.update(**corpus_record_fields(identity.corpus))
            trainer.fit(module, datamodule=datamodule, ckpt_path=place.resume_from, weights_only=True)
            if trainer.fast_dev_run:
                _test_fast_dev_run(cfg, place, module, datamodule, trainer, record)
            else:
                _test_checkpoints(cfg, place, module, datamodule, trainer, record)
                record.finish("debug" if debug else "finished",
                              **({"final_metrics": _logged_metrics(trainer)} if debug else {}))
    finally:
        run_end(callbacks, record.fields)
    if place.rank0:
        print(format_run_summary(record.fields, place.run_dir))
    # Ranks > 0 return rank 0's record (its run id and folder; a torchrun node launched separately has its own).
    return from_rank0(lambda: record.fields)


def _place(cfg: DictConfig) -> Place:
    """The run folder and id: a resumed run's own (``ckpt_path``, a SLURM requeue, or a re-run of an interrupted
    sweep into its own folder), else the launch folder and a new id."""
    rank0 = global_rank_from_env() == 0
    out = Path(cfg.paths.output_dir)
    ckpt_path = cfg.ckpt_path or requeued_checkpoint(out) or interrupted_checkpoint(out)
    if ckpt_path:
        resume = plan_resume(cfg, ckpt_path, corpus=partial(_corpus_now, cfg))
        print(f"Resuming run {resume.run_id} in {resume.run_dir}: epoch {resume.epoch + 1} of "
              f"{cfg.trainer.max_epochs} done ({resume.ckpt_path.name}), continuing with epoch {resume.epoch + 2}")
        place = Place(resume.run_dir, resume.run_id, resume.ckpt_path, rank0)
    else:
        # Lightning's ddp children re-run this script: they inherit rank 0's id through the environment.
        inherited = os.environ.get(RUN_ID_ENV) if not rank0 else None
        place = Place(out, inherited or new_run_id(), None, rank0)
    os.environ[RUN_ID_ENV] = place.run_id
    return place


def _save_config(cfg: DictConfig, place: Place) -> None:
    """``config.yaml`` and its tree (``config.resumed.yaml`` for a resumed part), written by rank 0."""
    place.run_dir.mkdir(parents=True, exist_ok=True)
    if place.rank0:
        name = "config" if place.resume_from is None else "config.resumed"
        OmegaConf.save(cfg, place.run_dir / f"{name}.yaml", resolve=True)
        print_config_tree(cfg, place.run_dir / f"{name.replace('config', 'config_tree')}.txt")


def _identity_fields(cfg: DictConfig) -> dict[str, Any]:
    """The record fields that name the run (the report lists even a run that failed before training by them)."""
    return {"fusion": cfg.fusion.name, "fold": cfg.fold, "seed": cfg.seed, "protocol": cfg.protocol.name,
            "dataset": cfg.data.name, "backbone": cfg.backbone.name, "code_version": code_version(),
            **provenance(cfg)}


def _metadata(cfg: DictConfig, module: EmotionModule) -> dict[str, Any]:
    """The record's descriptive fields (``cfnsr.builders.run_metadata``), with the network's size."""
    gflops = gflops_per_clip(module.model, *clip_shapes(cfg)) if cfg.measure_gflops else None
    return run_metadata(cfg, count_params(module.model), gflops)


def _prepare_data(cfg: DictConfig, place: Place) -> dict[str, Any] | None:
    """Rank 0 makes the corpus and its cache (``cfnsr.builders.corpus.prepare_data``: before any other rank reads them, they wait
    in the process group's set-up inside ``fit``, or were not spawned yet) and returns their identity
    (``cfnsr.runs.corpus_check``); None on other ranks, which write no checkpoint."""
    if not place.rank0:
        return None
    prepare_data(cfg)
    return {**_corpus_now(cfg), "cache_settings_hash": preprocess_settings(cfg).hash}


def _tester(cfg: DictConfig, run_dir: Path, extra: list[pl.Callback]) -> pl.Trainer:
    """A logger-free trainer for one test: the CSV logger cannot append a new header to the fit's file after a
    ddp_spawn re-launch, and test numbers go to metrics.json (and the wandb summary) anyway."""
    return build_trainer(cfg, run_dir, [*progress_bars(cfg.trainer), *extra], False)


def _test_checkpoints(cfg: DictConfig, place: Place, module: EmotionModule, datamodule: pl.LightningDataModule,
                      trainer: pl.Trainer, record: RunRecord) -> None:
    """Which checkpoints were selected (into the record) and, with ``test_after_fit``, each one's test result.

    Rank 0 alone reads the checkpoints (it wrote them; other nodes may have no copy of its folder) and hands every
    rank the facts and, per test, the weights: no rank reads a file that another rank writes.
    """
    states: dict[str, dict[str, Any]] = {}  # rank 0's weights to test, by tag
    chosen = from_rank0(lambda: _chosen_checkpoints(cfg, place.run_dir / CHECKPOINT_DIR, place.run_id, states))
    record.update(**chosen["fields"], objective=chosen["objective"], world_size=trainer.world_size,
                  num_nodes=trainer.num_nodes)
    if not cfg.test_after_fit:
        return
    for tag in TESTS:
        result = run_test(partial(_tester, cfg, place.run_dir), module, datamodule,
                          place.run_dir / RESULTS_DIR / f"{tag}.json", weights=partial(states.pop, tag))
        record.update(**{tag: with_interactions({**result, **chosen["tests"][tag]}, cfg.data.root)})


def _test_fast_dev_run(cfg: DictConfig, place: Place, module: EmotionModule, datamodule: pl.LightningDataModule,
                       trainer: pl.Trainer, record: RunRecord) -> None:
    """``trainer.fast_dev_run``: Lightning ran one batch per stage and wrote no checkpoints (nor does
    ``RunCheckpoints``); the test runs once on the weights in memory. The record says "debug"."""
    record.update(final_metrics=_logged_metrics(trainer), selection="fast_dev_run: the weights after one batch")
    if cfg.test_after_fit:
        result = run_test(partial(_tester, cfg, place.run_dir), module, datamodule,
                          place.run_dir / RESULTS_DIR / "test.json")
        record.update(test=with_interactions(result, cfg.data.root))
    record.finish("debug", epochs=1)


def _loggers(cfg: DictConfig, place: Place, meta: dict[str, Any]) -> list[Any]:
    """The configured loggers, writing into the run folder (a resumed run's, not the new launch folder).

    A resumed CSV logger writes a new version folder: reusing ``csv/`` would delete the first part's per-epoch log.
    A wandb logger gets the run id as its id, so a resumed run continues its wandb run, and a group per recipe.
    """
    out = []
    for c in (cfg.get("logger") or {}).values():
        if c is None or "_target_" not in c:
            continue
        extra: dict[str, Any] = {"save_dir": str(place.run_dir)}
        if place.resume_from is not None and c._target_.endswith("CSVLogger"):
            extra["version"] = f"resumed-{time.strftime('%Y%m%d-%H%M%S')}"
        if c._target_.endswith("WandbLogger"):
            extra.update(wandb_run_options(meta, place.run_id, c.get("group")))
            # logger.wandb.log_model is read by WandbSummary, which uploads cfnsr's own checkpoints (also offline);
            # Lightning's upload sees only its ModelCheckpoint files and refuses offline runs.
            extra["log_model"] = False
        out.append(instantiate(c, **extra))
    return out


def _init_and_code(init_sources: dict[str, dict[str, Any]], place: Place) -> dict[str, Any]:
    """``init_sources``: which checkpoints initialised the run (per part: path, run id, recipe hash, whether the
    split was recorded); a resumed run loaded none, so its first record's value is kept. ``code_version_previous``:
    the code version of the interrupted part, when a resume runs other code (the report marks such a run)."""
    if place.resume_from is None:
        return {"init_sources": {part: {k: v for k, v in src.items() if k != "split"}
                                 | {"split_recorded": src.get("split") is not None}
                                 for part, src in init_sources.items()}}
    before = read_own_record(place.run_dir) or {}
    extra: dict[str, Any] = {"init_sources": before.get("init_sources")}
    previous = before.get("code_version_previous") or before.get("code_version")
    if previous is not None and previous != code_version():
        extra["code_version_previous"] = previous
    return extra


def configured_callbacks(cfg: DictConfig, place: Place) -> list[pl.Callback]:
    """The configured callbacks (``conf/callbacks/``); entries set to null are left out. ``RunCheckpoints`` (or a
    subclass) gets this run's checkpoint folder and id as constructor arguments."""
    out = []
    for c in (cfg.get("callbacks") or {}).values():
        if c is None or "_target_" not in c:
            continue
        run_values = ({"dirpath": place.run_dir / CHECKPOINT_DIR, "run_id": place.run_id}
                      if issubclass(get_class(c._target_), RunCheckpoints) else {})
        out.append(instantiate(c, **run_values))
    return out


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
    metric's best value (``val_best``), how many later epochs equalled the selected score (``val_ties``) and
    the rule among ties (``selection_ties``). Empty for a checkpoint without that state."""
    if not state.get("monitor"):
        return {}
    tie = state.get("tie_break")
    rule = f"lower {tie}, then the earlier epoch" if tie else "the earlier epoch"
    return {"val_monitor": state["monitor"], "val_best": state.get("best_score"),
            "val_ties": int(state.get("ties") or 0), "selection_ties": rule}


def debug_flags(cfg: DictConfig) -> list[str]:
    """The trainer settings that make this a debugging run, not a result: it sees only part of the data."""
    return part_of_data_flags(cfg.trainer, ("limit_train_batches", "limit_val_batches", "limit_test_batches"))


def _logged_metrics(trainer: pl.Trainer) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1}


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
