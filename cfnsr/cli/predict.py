"""``cfnsr-predict`` / ``python predict.py ckpt_path=<ckpt> input=<video | folder | glob>``: emotions over time in
your own videos. Writes ``predictions.csv`` and a timeline per video into the run folder (docs/predict.md)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cfnsr.cli import CONFIG_PATH
from cfnsr.conf_resolvers import register_resolvers

register_resolvers()  # before hydra.main composes; see cfnsr.conf_resolvers for the child processes


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict")
def main(cfg: DictConfig) -> None:
    from cfnsr.predict.run import predict

    predict(cfg)
