"""Re-evaluate a checkpoint on its fold's test actors, rebuilding the run from the config saved inside it; with
``robustness=<suite>`` also under the suite's corruptions (``cfnsr.robustness``, docs/robustness.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.config_checks import check_evaluate_config
from cfnsr.builders.objects import build_datamodule, build_module
from cfnsr.builders.run_metadata import run_metadata
from cfnsr.console import progress_bars
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
from cfnsr.runs.folder import global_rank_from_env
from cfnsr.runs.summary import format_run_summary


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on the test actors of the fold it was trained on; returns the record it prints.

    With a robustness suite (``cfg.robustness`` listing corruptions) the same test split is then tested under each
    corruption; ``robustness.{json,csv,png}`` go to the output dir and the record gets ``robustness`` (the JSON).
    """
    check_evaluate_config(cfg)
    suite = parse_suite(cfg.get("robustness"))  # before any work: a wrong suite stops here
    ckpt = load_checkpoint(cfg.ckpt_path, require_run=False)
    run_cfg, state_dict = OmegaConf.create(ckpt["cfnsr_config"]), ckpt["state_dict"]
    for key in ("root", "cache_dir"):  # the data may have moved since training
        if cfg.data.get(key):
            run_cfg.data[key] = cfg.data[key]
    if suite is not None:
        require_audio_window(run_cfg.data.cache_dir)
    out = Path(cfg.paths.output_dir)
    module = build_module(run_cfg, results_dir=out, load_init=False)
    module.load_state_dict(state_dict)
    module.test_tag = "test"
    datamodule = build_datamodule(run_cfg)
    trainer = instantiate(cfg.trainer, logger=False, default_root_dir=str(out), callbacks=progress_bars(cfg.trainer))
    if global_rank_from_env() == 0:  # under ddp_spawn the result comes back in this file: never read an older one
        (out / "test.json").unlink(missing_ok=True)
    trainer.test(module, datamodule=datamodule, verbose=False)
    result = module.last_test_result()  # the same on every rank (no rank reads a file another rank writes)
    record = {**run_metadata(run_cfg, count_params(module.model), None), "test": result,
              "selection": f"checkpoint {Path(cfg.ckpt_path).name}", "best_ckpt": str(cfg.ckpt_path),
              "best_epoch": ckpt.get("epoch"), "epochs": run_cfg.trainer.get("max_epochs")}
    if suite is not None:
        rows = run_suite(suite, trainer, module, datamodule, out)
        if trainer.is_global_zero:
            doc = robustness_document(checkpoint_meta(ckpt, cfg.ckpt_path, suite), result, rows)
            paths = write_outputs(out, doc)
            record["robustness"] = doc
            print(f"robustness: {len(rows)} condition(s) -> {paths['json']}, {paths['csv'].name}, "
                  f"{paths['png'].name}")
    if trainer.is_global_zero:  # one summary, not one per rank
        print(format_run_summary(record, out))
    return record
