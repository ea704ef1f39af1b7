"""Re-evaluate a checkpoint on its fold's test actors, rebuilding the run from the config saved inside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cfnsr.checkpoints import load_checkpoint
from cfnsr.complexity import count_params
from cfnsr.config_checks import check_evaluate_config
from cfnsr.experiment import build_datamodule, build_module
from cfnsr.summary import format_run_summary
from cfnsr.train import run_metadata


def load_run_config(ckpt_path: str | Path) -> tuple[DictConfig, dict[str, Any]]:
    """The run config and state dict of a cfnsr checkpoint, read as data (``weights_only=True``).

    Checkpoints written before format versions are accepted here (evaluation changes nothing); a file that is
    not a cfnsr checkpoint, or that would need code to load, raises ``CheckpointError`` naming it.
    """
    ckpt = load_checkpoint(ckpt_path, require_run=False)
    return OmegaConf.create(ckpt["cfnsr_config"]), ckpt["state_dict"]


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on the test actors of the fold it was trained on; returns the record it prints."""
    check_evaluate_config(cfg)
    run_cfg, state_dict = load_run_config(cfg.ckpt_path)
    for key in ("root", "cache_dir"):  # the data may have moved since training
        if cfg.data.get(key):
            run_cfg.data[key] = cfg.data[key]
    out = Path(cfg.paths.output_dir)
    module = build_module(run_cfg, results_dir=out, load_init=False)
    module.load_state_dict(state_dict)
    module.test_tag = "test"
    datamodule = build_datamodule(run_cfg)
    trainer = instantiate(cfg.trainer, logger=False, default_root_dir=str(out))
    trainer.test(module, datamodule=datamodule, verbose=False)
    result = json.loads((out / "test.json").read_text())
    record = {**run_metadata(run_cfg, count_params(module.model), None), "test": result,
              "selection": f"checkpoint {Path(cfg.ckpt_path).name}", "best_ckpt": str(cfg.ckpt_path)}
    print(format_run_summary(record, out))
    return record
