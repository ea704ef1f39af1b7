"""``cfnsr-complexity`` / ``python complexity.py backbone=paper``: parameters, GFLOPs per clip and (on request) CPU
latency of every fusion."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cfnsr.cli import CONFIG_PATH
from cfnsr.conf_resolvers import register_resolvers
from cfnsr.runs.renames import rename_argv

register_resolvers()  # before hydra.main composes; see cfnsr.conf_resolvers for the child processes


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="complexity")
def _main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from cfnsr.tasks.complexity import run

    run(cfg, HydraConfig.get().searchpath)  # extra folders: hydra.searchpath=[...]


def main() -> None:
    """The command: old names on its command line (``fusion=multiplication``, ``complexity=false``) are rewritten to
    the current ones, with a warning each (``cfnsr.runs.renames``), before Hydra parses it."""
    rename_argv()
    return _main()
