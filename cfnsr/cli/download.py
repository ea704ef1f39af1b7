"""``cfnsr-download`` / ``python download.py data=ravdess data.root=<dir>``: download a corpus into the layout
preprocessing reads (docs/download.md)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cfnsr.cli import CONFIG_PATH
from cfnsr.conf_resolvers import register_resolvers

register_resolvers()  # before hydra.main composes; see cfnsr.conf_resolvers for the child processes


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="download")
def main(cfg: DictConfig) -> None:
    from cfnsr.download import run

    run.main(cfg)
