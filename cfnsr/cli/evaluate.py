"""``cfnsr-evaluate`` / ``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt``: re-test a checkpoint on its
fold's test actors."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cfnsr.cli import CONFIG_PATH
from cfnsr.conf_resolvers import register_resolvers

register_resolvers()  # before hydra.main composes; see cfnsr.conf_resolvers for the child processes


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from cfnsr.console import console_to_log, quiet_lightning
    from cfnsr.tasks.evaluate import evaluate

    quiet_lightning()
    with console_to_log():  # <output dir>/evaluate.log gets what the console shows
        evaluate(cfg)
