"""Emotions over time in your own videos: ``python predict.py ckpt_path=<ckpt> input=<video | folder | glob>``.

Writes ``predictions.csv`` (a row per window, a summary row per file) and ``timeline_<video stem>.png`` into the run
folder; see docs/predict.md.
"""

import hydra
from omegaconf import DictConfig

from cfnsr.predict.run import predict
from cfnsr.runs.job_dirs import register

register()  # conf/hydra/default.yaml names multirun job folders with ${job_dirname:...}


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
