"""Re-evaluate a checkpoint on its fold's test actors: ``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt``."""

import hydra
from omegaconf import DictConfig

from cfnsr.console import console_to_log, quiet_lightning
from cfnsr.runs.job_dirs import register
from cfnsr.tasks.evaluate import evaluate

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    quiet_lightning()
    with console_to_log():  # <output dir>/evaluate.log gets what the console shows
        evaluate(cfg)


if __name__ == "__main__":
    main()
