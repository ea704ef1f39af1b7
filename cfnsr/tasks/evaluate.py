"""Re-evaluate a checkpoint on its fold's test actors, rebuilding the run from the config saved inside it; with
``robustness=<suite>`` also under the suite's corruptions (``cfnsr.robustness``, docs/robustness.md)."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.checkpoint_config import evaluation_config, hydra_searchpath
from cfnsr.builders.config_checks import check_evaluate_config
from cfnsr.builders.corpus import prepare_data
from cfnsr.builders.objects import build_datamodule, build_module
from cfnsr.builders.run_metadata import part_of_data_flags, run_metadata
from cfnsr.console import progress_bars
from cfnsr.files import write_text_atomic
from cfnsr.models.complexity import count_params
from cfnsr.robustness.suite import (
    checkpoint_meta,
    parse_suite,
    require_audio_window,
    robustness_document,
    run_suite,
    write_outputs,
)
from cfnsr.runs.checkpoint_files import load_checkpoint
from cfnsr.runs.corpus_check import record_fields as corpus_record_fields
from cfnsr.runs.diagnostics import read_manifest, with_interactions
from cfnsr.runs.folder import JobLock, RunFolderError, global_rank_from_env
from cfnsr.runs.summary import format_run_summary
from cfnsr.tester import run_test

RECORD_FILE = "evaluation.json"  # evaluate's record: what was tested, on what, whether partial
RESULT_FILE = "test.json"
# where the test's own result comes back under ddp_spawn (cfnsr.tester); removed once test.json names the checkpoint,
# so a kill in between never leaves a bare result looking like the evaluation's
HANDSHAKE_FILE = ".test.handshake.json"


def partial_flags(trainer_cfg: Any) -> list[str]:
    """The trainer settings that make an evaluation see only part of its test split (``limit_test_batches``, ...)."""
    return part_of_data_flags(trainer_cfg, ("limit_test_batches",))


def partial_reason(flags: list[str], result: dict[str, Any]) -> str | None:
    """Why this result covers only part of the split (None when it covers all of it): flags and clip counts."""
    n, total = result.get("n"), result.get("split_clips")
    short = total is not None and n != total
    if not flags and not short:
        return None
    counts = f"{n} of {total} test clips" if total is not None else f"{n} test clips"
    return ", ".join([*flags, counts]) if flags else f"{counts} evaluated"


def claim_evaluation_folder(out: Path) -> None:
    """Refuse an output folder that already holds another evaluation's results (two evaluations started in the
    same instant, or a reused ``hydra.run.dir``): one of them would overwrite the other's numbers."""
    held = [name for name in (RECORD_FILE, RESULT_FILE, "robustness.json") if (out / name).exists()]
    if held:
        raise RunFolderError(f"evaluation folder {out} already holds {', '.join(held)} of another evaluation; "
                             f"choose another folder (hydra.run.dir=...) instead of overwriting it")


def _tester(trainer_cfg: DictConfig, out: Path, extra: list[Any]) -> Any:
    """A logger-free trainer of the evaluate command's ``trainer`` settings for one test (``cfnsr.tester``)."""
    return instantiate(trainer_cfg, logger=False, default_root_dir=str(out),
                       callbacks=[*progress_bars(trainer_cfg), *extra])


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on the test actors of the fold it was trained on; returns the record it prints.

    With a robustness suite (``cfg.robustness`` listing corruptions) the same test split is then tested under each
    corruption; ``robustness.{json,csv,png}`` go to the output dir and the record gets ``robustness`` (the JSON).
    The output folder is locked for the evaluation (like a training job folder) and must not hold another
    evaluation's results; ``test.json`` and ``evaluation.json`` name the checkpoint (path, run id, epoch) and say
    ``partial`` (with the reason) when the trainer settings or the clip count show a subset of the test split.
    """
    check_evaluate_config(cfg)
    out = Path(cfg.paths.output_dir)
    if global_rank_from_env() != 0:
        return _evaluate_in(cfg, out)
    with JobLock(out):
        claim_evaluation_folder(out)
        return _evaluate_in(cfg, out)


def _evaluate_in(cfg: DictConfig, out: Path) -> dict[str, Any]:
    suite = parse_suite(cfg.get("robustness"))  # before any work: a wrong suite stops here
    ckpt = load_checkpoint(cfg.ckpt_path, require_run=False)
    # The saved config is evidence: its targets are checked against the project's configs before anything is built,
    # and paths and run options come from this command (cfnsr.builders.checkpoint_config).
    command = {"data": {k: cfg.data.get(k) for k in ("root", "cache_dir")},
               "paths": {"data_dir": cfg.paths.get("data_dir")}}
    run_cfg = OmegaConf.create(evaluation_config(ckpt["cfnsr_config"], command, str(cfg.ckpt_path),
                                                 hydra_searchpath()))
    state_dict = ckpt["state_dict"]
    if suite is not None:
        require_audio_window(run_cfg.data.cache_dir)
    module, _ = build_module(run_cfg, load_init=False)
    prepare_data(run_cfg)  # the corpus and the cache, before anything reads them (global rank 0 only)
    datamodule = build_datamodule(run_cfg)
    rank0 = global_rank_from_env() == 0
    tester = functools.partial(_tester, cfg.trainer, out)
    result = run_test(tester, module, datamodule, out / HANDSHAKE_FILE, weights=lambda: state_dict)
    checkpoint = {"path": str(Path(cfg.ckpt_path).resolve()), "run_id": ckpt.get("cfnsr_run_id"),
                  "epoch": ckpt.get("epoch")}
    # by_interaction: accuracy per interaction type, for a corpus that declares them (docs/diagnostics.md)
    result = with_interactions({**result, "checkpoint": checkpoint}, run_cfg.data.root)
    partial = partial_reason(partial_flags(cfg.trainer), result)
    result["partial"] = partial
    record = {**run_metadata(run_cfg, count_params(module.model), None), "test": result,
              "selection": f"checkpoint {Path(cfg.ckpt_path).name}", "best_ckpt": str(cfg.ckpt_path),
              "best_epoch": ckpt.get("epoch"), "epochs": run_cfg.trainer.get("max_epochs"),
              "checkpoint": checkpoint, "partial": partial,
              "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              **corpus_record_fields(datamodule.corpus_identity)}
    if rank0:
        write_text_atomic(out / RESULT_FILE, json.dumps(result))
        (out / HANDSHAKE_FILE).unlink(missing_ok=True)
    if suite is not None:
        rows = run_suite(suite, tester, module, datamodule, out, read_manifest(run_cfg.data.root))
        if rank0:
            meta = {**checkpoint_meta(ckpt, cfg.ckpt_path, suite), "partial": partial}
            doc = robustness_document(meta, result, rows)
            paths = write_outputs(out, doc)
            record["robustness"] = doc
            print(f"robustness: {len(rows)} condition(s) -> {paths['json']}, {paths['csv'].name}, "
                  f"{paths['png'].name}")
    if rank0:  # one summary, not one per rank
        write_text_atomic(out / RECORD_FILE, json.dumps({"schema": 1, "kind": "evaluation", **record}, default=str))
        if partial:
            print(f"PARTIAL EVALUATION ({partial}): a check, not a result; reports skip it")
        print(format_run_summary(record, out))
    return record
