"""``cfnsr-evaluate`` / ``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt``: re-test a checkpoint on its
fold's test actors."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cfnsr.cli import CONFIG_PATH
from cfnsr.conf_resolvers import register_resolvers
from cfnsr.runs.renames import rename_argv

register_resolvers()  # before hydra.main composes; see cfnsr.conf_resolvers for the child processes


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def _main(cfg: DictConfig) -> None:
    from cfnsr.console import console_to_log, quiet_lightning
    from cfnsr.tasks.evaluate import evaluate

    quiet_lightning()
    with console_to_log():  # <output dir>/evaluate.log gets what the console shows
        evaluate(cfg)


def main() -> None:
    """The command: old names on its command line (``fusion=multiplication``, ``complexity=false``) are rewritten to
    the current ones, with a warning each (``cfnsr.runs.renames``), before Hydra parses it."""
    rename_argv()
    return _main()
