"""Turn a RAVDESS-layout folder into the training cache: ``python preprocess.py data=ravdess data.root=<dir>``."""

import hydra
from omegaconf import DictConfig

from cfnsr.runs.job_dirs import register
from cfnsr.tasks import preprocess

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="preprocess_job")
def main(cfg: DictConfig) -> None:
    preprocess.main(cfg)


if __name__ == "__main__":
    main()
