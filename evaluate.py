"""Re-evaluate a checkpoint on its fold's test actors: ``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt``."""

import hydra
from omegaconf import DictConfig

from cfnsr.runs.job_dirs import register
from cfnsr.tasks.evaluate import evaluate

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
