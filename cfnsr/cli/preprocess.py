"""``cfnsr-preprocess`` / ``python preprocess.py data=ravdess data.root=<dir>``: turn a corpus folder into the
training cache (a CPU job: no torch)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cfnsr.cli import CONFIG_PATH
from cfnsr.conf_resolvers import register_resolvers

register_resolvers()  # before hydra.main composes; see cfnsr.conf_resolvers for the child processes


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="preprocess_job")
def main(cfg: DictConfig) -> None:
    from cfnsr.tasks import preprocess

    preprocess.main(cfg)
