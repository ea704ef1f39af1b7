"""Download a corpus into the layout preprocessing reads: ``python download.py data=ravdess data.root=<dir>``."""

import hydra
from omegaconf import DictConfig

from cfnsr.download import run
from cfnsr.runs.job_dirs import register

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="download")
def main(cfg: DictConfig) -> None:
    run.main(cfg)


if __name__ == "__main__":
    main()
